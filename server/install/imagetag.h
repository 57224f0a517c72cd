/*
 * imagetag: container image references and version-tag comparison.
 *
 * An image reference is "[registry[:port]/]path[:tag][@digest]". The tag is
 * the part after the last ':' that follows the last '/'. Tags are compared
 * as versions "v3.7.2", "3.8.0", "v3.8.0-rc.0" (an optional leading 'v',
 * major.minor.patch with missing parts read as 0, an optional pre-release
 * after '-' and build metadata after '+', ignored). The order is semver's:
 * numeric parts first, then a release sorts after any of its pre-releases
 * (v3.8.0-rc.0 < v3.8.0), pre-release identifiers compare numerically when
 * both are numbers, as text otherwise.
 *
 * Memory: imagetag_split() returns malloc'd strings owned by the caller.
 * Thread-safe (pure functions).
 */
#ifndef FERRY_INSTALL_IMAGETAG_H
#define FERRY_INSTALL_IMAGETAG_H

struct imagetag_version {
	long major, minor, patch;
	char pre[64];   /* pre-release without the '-', "" for a release */
};

/* Split an image reference into repository (everything before the tag or
 * digest) and tag (NULL when there is none). Returns 0, or -1 for an empty
 * reference. *repo and *tag are malloc'd (caller frees). */
int imagetag_split(const char *image, char **repo, char **tag);

/* Parse a version tag. Returns 0, or -1 when tag is not a version
 * ("latest", a digest, empty). */
int imagetag_parse(const char *tag, struct imagetag_version *out);

/* Compare two parsed versions: <0, 0, >0 (semver precedence). */
int imagetag_version_cmp(const struct imagetag_version *a,
			 const struct imagetag_version *b);

/* Compare two tags; sets *cmp to <0, 0, >0 and returns 0, or returns -1
 * when either tag does not parse. */
int imagetag_compare(const char *a, const char *b, int *cmp);

/* Compare only major.minor.patch (pre-release ignored): used for "is the
 * agent at least the v3.8.0 line", where v3.8.0-rc.0 counts as v3.8.0.
 * Same return convention as imagetag_compare(). */
int imagetag_compare_core(const char *a, const char *b, int *cmp);

#endif
