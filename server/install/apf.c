/*
 * apf.c: build the FlowSchema and PriorityLevelConfiguration for Cilium.
 *
 * The objects are what the guide's cilium-apf.yaml holds, with the shares
 * computed from the cluster size instead of edited by hand.
 */
#include "server/install/apf.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

int apf_shares_for_level(const char *level)
{
	if (!level || (level[0] != 'L' && level[0] != 'l') || !level[1])
		return -1;
	char *end;
	long n = strtol(level + 1, &end, 10);
	if (*end || n <= 0 || !isdigit((unsigned char)level[1]))
		return -1;
	return apf_shares_for_nodes(n);
}

int apf_shares_for_nodes(long nodes)
{
	if (nodes <= 500)
		return 10;
	if (nodes <= 1000)
		return 6;
	if (nodes <= 3000)
		return 3;
	return 2;
}

const char *apf_api_version_for(int kube_minor)
{
	if (kube_minor >= 29)
		return APF_GROUP "/v1";
	if (kube_minor >= 26)
		return APF_GROUP "/v1beta3";
	return NULL;
}

json_t *apf_flowschema(const char *api_version, const char *sa_namespace)
{
	json_t *cilium_rule = json_pack("{s:[s], s:b, s:[s], s:[s], s:[s]}",
					"apiGroups", "cilium.io",
					"clusterScope", 1,
					"namespaces", "*",
					"resources", "*",
					"verbs", "list");
	json_t *pods_rule = json_pack("{s:[s], s:b, s:[s], s:[s], s:[s]}",
				      "apiGroups", "",
				      "clusterScope", 1,
				      "namespaces", "*",
				      "resources", "pods",
				      "verbs", "list");
	json_t *subject = json_pack("{s:s, s:{s:s, s:s}}", "kind", "ServiceAccount",
				    "serviceAccount", "name", "cilium",
				    "namespace", sa_namespace);
	return json_pack("{s:s, s:s, s:{s:s, s:{s:s}}, s:{s:{s:s}, s:i, s:{s:s}, s:[{s:[o,o], s:[o]}]}}",
			 "apiVersion", api_version, "kind", "FlowSchema",
			 "metadata", "name", APF_NAME,
			 "labels", "app.kubernetes.io/managed-by", "ferry",
			 "spec",
			 "distinguisherMethod", "type", "ByUser",
			 "matchingPrecedence", 2,
			 "priorityLevelConfiguration", "name", APF_NAME,
			 "rules", "resourceRules", cilium_rule, pods_rule,
			 "subjects", subject);
}

json_t *apf_priority_level(const char *api_version, int shares)
{
	return json_pack("{s:s, s:s, s:{s:s, s:{s:s}}, s:{s:s, s:{s:i, s:i, s:i, s:{s:s, s:{s:i, s:i, s:i}}}}}",
			 "apiVersion", api_version, "kind", "PriorityLevelConfiguration",
			 "metadata", "name", APF_NAME,
			 "labels", "app.kubernetes.io/managed-by", "ferry",
			 "spec", "type", "Limited",
			 "limited",
			 "nominalConcurrencyShares", shares,
			 "lendablePercent", 0,
			 "borrowingLimitPercent", 0,
			 "limitResponse", "type", "Queue",
			 "queuing", "handSize", 6, "queueLengthLimit", 50, "queues", 64);
}
