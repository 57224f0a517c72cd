#!/usr/bin/env python3
"""docs/API.md documents every route of the route table (api/routes.c):
each `METHOD /path` of the table appears in API.md as `METHOD /path`."""
import os
import re
import sys

src = os.environ.get("FERRY_SRC", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
table = open(os.path.join(src, "api", "routes.c")).read()
doc = open(os.path.join(src, "docs", "API.md")).read()
routes = re.findall(r'\{\s*"([A-Z]+)",\s*"(/[^"]*)",\s*\w+,\s*API_SCOPE_', table)
missing = ["%s %s" % r for r in routes if "`%s %s`" % r not in doc]
if len(routes) < 30:
    print("FAIL: api_doc_every_route: only %d routes parsed from api/routes.c" % len(routes))
    sys.exit(1)
if missing:
    print("FAIL: api_doc_every_route: not in docs/API.md: %s" % ", ".join(missing))
    sys.exit(1)
print("PASS: api_doc_every_route")
