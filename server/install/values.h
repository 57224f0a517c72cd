/*
 * install/values: the user values of an install, layered as SPEC §2.4 says:
 *   1. the profile's layer (profiles.h), with the API server endpoint
 *      preflight discovered;
 *   2. the image-mirror layer when params.image_mirror is true;
 *   3. the user's layers, params.values_yaml (YAML strings, in order);
 *   4. params.set ("k=v" strings, Helm's --set grammar), in order.
 * On an upgrade, the previous revision's user values (the newest deployed
 * revision in PostgreSQL, db/releases.h) go between 2 and 3 as Helm 3.14+
 * decides (install_values_reuse()): reset_values -> never;
 * reuse_values or reset_then_reuse_values -> always; neither (Helm's
 * default) -> only when the job gives no values of its own (no values_yaml
 * and no set). (Helm's reuse_values also renders with the previous chart's
 * default values.yaml; ferry renders with the new chart's defaults, which
 * is reset_then_reuse_values: see docs/ARCHITECTURE.md.)
 * Later layers win (deep merge; null removes). The result is what Helm
 * calls the release's config: `helm get values` shows it.
 *
 * Both the cni-config phase and the cilium phase compute the values with
 * this one function, so the CNI ConfigMap's name always equals the chart's
 * cni.configMap.
 *
 * Memory: returned json_t are new references owned by the caller.
 * Thread-safe.
 */
#ifndef FERRY_INSTALL_VALUES_H
#define FERRY_INSTALL_VALUES_H

#include "server/install/profiles.h"

#include <jansson.h>
#include <stddef.h>

struct install_run;

struct install_values_in {
	enum profile_kind profile;
	const json_t *params;          /* job params */
	const char *k8s_service_host;  /* from preflight, may be NULL */
	int k8s_service_port;
	const char *chart_version;
	const json_t *chart_defaults;  /* for the mirror layer; NULL = guide list */
	const json_t *previous;        /* reused user values or NULL */
};

/* NULL with a message in err on a bad layer (YAML error names the layer)
 * or a bad --set. */
json_t *install_values_build(const struct install_values_in *in, char *err, size_t errlen);

/* install_values_build() with the run's profile, params and preflight
 * facts, and the previous revision's values when the params' mode reuses
 * them. */
json_t *install_user_values(struct install_run *run, const json_t *chart_defaults,
			    char *err, size_t errlen);

/* Whether params reuse the previous revision's values (see above). */
int install_values_reuse(const json_t *params);

/* params.chart_version or the default. */
const char *install_chart_version(const json_t *params);

#endif
