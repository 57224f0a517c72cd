/*
 * yamljson: YAML text to jansson values and back, for configuration-like
 * documents (kubeconfigs, values files, Kubernetes manifests, apply patches).
 *
 * Scalars are typed the way Kubernetes' YAML reader (YAML 1.1-ish core schema
 * as sigs.k8s.io/yaml sees it) types them: plain true/false/yes/no-free
 * booleans (only true/false/True/False/TRUE/FALSE), null/~/empty, integers
 * (decimal, 0x, 0o), floats; quoted scalars and block scalars are strings.
 * Anchors and aliases are expanded (with a cap against alias bombs).
 *
 * Memory: returned json_t values are new references owned by the caller.
 * Thread-safe (no shared state).
 */
#ifndef FERRY_YAMLJSON_H
#define FERRY_YAMLJSON_H

#include <jansson.h>
#include <stddef.h>

/* Parse the first YAML document of text. On error returns NULL and writes a
 * message with line/column into err (if err is non-NULL, errlen bytes). An
 * empty document parses as JSON null. */
json_t *yaml_to_json(const char *text, size_t len, char *err, size_t errlen);

/* Parse every document of a multi-document stream into a JSON array. Empty
 * documents (only comments or whitespace) are skipped. */
json_t *yaml_stream_to_json(const char *text, size_t len, char *err, size_t errlen);

/* Emit a JSON value as block-style YAML (keys in the object's order).
 * Returns a malloc'd NUL-terminated string owned by the caller. */
char *json_to_yaml(const json_t *value);

#endif
