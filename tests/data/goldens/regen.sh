#!/bin/sh
# Regenerate the committed helmref expectations for tests/integration/test_goldens.py.
# Needs a built helmref (shared/tools/helmref/build.sh; HELMREF=path to override).
cd "$(dirname "$0")/../../.." && python3 - <<'PY'
import gzip, json
g = {"__file__": "tests/integration/test_goldens.py", "__name__": "lib"}
exec(open("tests/integration/test_goldens.py").read(), g)
hr = g["helmref_bin"]()
assert hr, "helmref not built"
for name, (chart, files, flags) in g["EXTRA"].items():
    out = g["helmref_render"](hr, chart, files, flags)
    with gzip.open("tests/data/goldens/%s.json.gz" % name, "wt") as f:
        json.dump(out, f, sort_keys=True, separators=(",", ":"))
    print("wrote", name)
PY
