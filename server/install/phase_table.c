/*
 * phase_table.c: the install job's phase table (phases.h), kept apart from
 * the shared helpers so that linking the helpers does not pull in every
 * phase (and the chart engine behind the cilium phase).
 */
#include "server/install/l2.h"
#include "server/install/phases.h"

#include <string.h>

static const struct phase_def install_phases[] = {
	{ "preflight", phase_install_preflight },
	{ "eni-agent", phase_eni_agent },
	{ "cni-config", phase_cni_config },
	{ "cilium", phase_cilium },
	{ "wait", phase_wait },
	{ "l2-announcements", phase_l2 },
	{ "retire-tke-components", phase_retire },
	{ "apf", phase_apf },
	{ "nodepool", phase_nodepool },
	{ "surroundings", phase_record_surroundings },
	{ "verify", phase_verify },
};

/* rollback and uninstall (phase_lifecycle.c). The rollback's apply phase is
 * named "cilium" so that the wait phase finds the workloads it applied. */
static const struct phase_def rollback_phases[] = {
	{ "preflight", phase_preflight },
	{ "cilium", phase_rollback_release },
	{ "wait", phase_wait },
	{ "surroundings", phase_restore_surroundings },
	{ "verify", phase_verify },
};

static const struct phase_def uninstall_phases[] = {
	{ "preflight", phase_preflight },
	{ "uninstall", phase_uninstall_release },
	{ "wait-pods-gone", phase_uninstall_wait },
	{ "surroundings", phase_restore_surroundings },
};

static const struct phase_def adopt_phases[] = {
	{ "preflight", phase_preflight },
	{ "adopt", phase_adopt },
};

static const struct phase_def check_phases[] = {
	{ "preflight", phase_preflight },
	{ "check", phase_check },
};

static const struct phase_def repair_phases[] = {
	{ "preflight", phase_preflight },
	{ "repair", phase_repair },
};

const struct phase_def *lifecycle_phase_table(const char *kind, int *n)
{
	if (!strcmp(kind, "check")) {
		*n = 2;
		return check_phases;
	}
	if (!strcmp(kind, "repair")) {
		*n = 2;
		return repair_phases;
	}
	if (!strcmp(kind, "adopt")) {
		*n = (int)(sizeof(adopt_phases) / sizeof(adopt_phases[0]));
		return adopt_phases;
	}
	if (!strcmp(kind, "rollback")) {
		*n = (int)(sizeof(rollback_phases) / sizeof(rollback_phases[0]));
		return rollback_phases;
	}
	if (!strcmp(kind, "uninstall")) {
		*n = (int)(sizeof(uninstall_phases) / sizeof(uninstall_phases[0]));
		return uninstall_phases;
	}
	*n = 0;
	return NULL;
}

const struct phase_def *install_phase_table(int *n)
{
	*n = (int)(sizeof(install_phases) / sizeof(install_phases[0]));
	return install_phases;
}
