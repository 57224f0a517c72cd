/*
 * phase_table.c: the install job's phase table (phases.h), kept apart from
 * the shared helpers so that linking the helpers does not pull in every
 * phase (and the chart engine behind the cilium phase).
 */
#include "server/install/l2.h"
#include "server/install/phases.h"

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
	{ "verify", phase_verify },
};

const struct phase_def *install_phase_table(int *n)
{
	*n = (int)(sizeof(install_phases) / sizeof(install_phases[0]));
	return install_phases;
}
