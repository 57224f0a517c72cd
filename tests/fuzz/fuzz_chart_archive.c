/*
 * fuzz_chart_archive: chart archives (.tgz) through the loader; inputs that
 * are not gzip are gzip-compressed first so the tar reader is reached.
 */
#include "server/chart/chart.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

const char *fuzz_name = "fuzz_chart_archive";
const char *const fuzz_dictionary[] = { "ustar", "00000000644", "Chart.yaml", "templates/", "../", "/", "x/", NULL };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];
	const uint8_t *in = data;
	size_t inlen = size;
	unsigned char *gz = NULL;
	if (size < 2 || data[0] != 0x1f || data[1] != 0x8b) {
		/* wrap raw tar bytes in gzip */
		uLongf zl = compressBound(size) + 64;
		gz = malloc(zl);
		z_stream zs;
		memset(&zs, 0, sizeof(zs));
		deflateInit2(&zs, 1, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
		zs.next_in = (Bytef *)data;
		zs.avail_in = (uInt)size;
		zs.next_out = gz;
		zs.avail_out = (uInt)zl;
		deflate(&zs, Z_FINISH);
		inlen = zs.total_out;
		deflateEnd(&zs);
		in = gz;
	}
	struct chart *c = chart_load_archive(in, inlen, err, sizeof(err));
	if (c) {
		struct chart_render_opts o = { 0 };
		o.max_steps = 20000;
		o.max_output = 1 << 20;
		struct chart_render *r = chart_render(c, NULL, &o, err, sizeof(err));
		chart_render_free(r);
		chart_free(c);
	}
	free(gz);
	return 0;
}
