/*
 * helmignore: the rules of a chart directory's .helmignore file, applied
 * when a chart is loaded from a directory (as Helm's LoadDir does; archives
 * were filtered when they were packaged). Internal to server/chart.
 *
 * Rules, one per line (Helm's pkg/ignore): blank lines and lines starting
 * with '#' are skipped, surrounding spaces trimmed; "!rule" negates;
 * "rule/" matches directories only; "/rule" matches the path from the
 * chart's top; a rule with a '/' inside matches the whole relative path,
 * one without matches the base name; patterns are Go's filepath.Match
 * ('*', '?', '[...]', '\\'), and "**" is refused. Helm always adds the rule
 * "templates/.?*" (hidden files under templates/).
 *
 * Memory: helmignore_parse returns a set the caller frees with
 * helmignore_free. Thread-safety: a parsed set is read-only.
 */
#ifndef FERRY_CHART_HELMIGNORE_H
#define FERRY_CHART_HELMIGNORE_H

#include <stddef.h>

struct helmignore;

/* Parse TEXT (may be NULL/empty: only the default rule); NULL with a
 * message in err for a bad pattern. */
struct helmignore *helmignore_parse(const char *text, size_t len, char *err, size_t errlen);
void helmignore_free(struct helmignore *h);

/* 1 when PATH (relative to the chart's top, '/'-separated) is ignored;
 * is_dir: PATH is a directory (then its whole subtree is skipped). */
int helmignore_ignored(const struct helmignore *h, const char *path, int is_dir);

/* Go's filepath.Match on '/'-separated names: 1 match, 0 no match, -1 a
 * malformed pattern. */
int helmignore_match(const char *pattern, const char *name);

#endif
