/*
 * ferry-client: the REST client half of `ferry` (clusters, install,
 * preflight, jobs). `ferry` execs it for those commands so that the chart
 * engine's `ferry template` does not load libcurl and its dependencies.
 * It can also be run directly; it behaves as `ferry` does.
 */
#include "server/cli/client.h"

int main(int argc, char **argv)
{
	return client_main(argc, argv);
}
