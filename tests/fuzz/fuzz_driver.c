/*
 * fuzz_driver: a libFuzzer-compatible driver for builds without libFuzzer.
 *
 * Usage: fuzz_X [-t SECONDS] [-n RUNS] [-s SEED] [CORPUS_FILE_OR_DIR]...
 * Every corpus input is run once, then random mutations of the corpus
 * (byte flips, inserts, deletes, splices, dictionary tokens) are run until
 * the time or run budget is spent. Prints "PASS: fuzz_X: N runs" at the end;
 * a crash or sanitizer report aborts the program (tests/run counts that as a
 * failure). Built with -fsanitize=fuzzer instead, libFuzzer's own main is
 * used (compile with -DFUZZ_LIBFUZZER).
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
extern const char *const fuzz_dictionary[];
extern const char *fuzz_name;

#ifndef FUZZ_LIBFUZZER
struct input { unsigned char *d; size_t n; };
static struct input *corpus;
static size_t ncorpus, capcorpus;

static void add_input(const unsigned char *d, size_t n)
{
	if (ncorpus == capcorpus) {
		capcorpus = capcorpus ? capcorpus * 2 : 16;
		corpus = realloc(corpus, capcorpus * sizeof(*corpus));
		if (!corpus)
			abort();
	}
	corpus[ncorpus].d = malloc(n ? n : 1);
	if (!corpus[ncorpus].d)
		abort();
	memcpy(corpus[ncorpus].d, d, n);
	corpus[ncorpus].n = n;
	ncorpus++;
}

static void load_path(const char *p)
{
	struct stat st;
	if (stat(p, &st))
		return;
	if (S_ISDIR(st.st_mode)) {
		DIR *dir = opendir(p);
		struct dirent *de;
		if (!dir)
			return;
		while ((de = readdir(dir))) {
			if (de->d_name[0] == '.')
				continue;
			char sub[4096];
			snprintf(sub, sizeof(sub), "%s/%s", p, de->d_name);
			load_path(sub);
		}
		closedir(dir);
		return;
	}
	FILE *f = fopen(p, "rb");
	if (!f)
		return;
	unsigned char *buf = malloc((size_t)st.st_size + 1);
	size_t n = fread(buf, 1, (size_t)st.st_size, f);
	fclose(f);
	add_input(buf, n);
	free(buf);
}

static uint64_t rng;
static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static size_t mutate(unsigned char *d, size_t n, size_t cap)
{
	int times = 1 + (int)(rnd() % 4);
	for (int t = 0; t < times; t++) {
		switch (rnd() % 7) {
		case 0: /* flip a byte */
			if (n) d[rnd() % n] ^= (unsigned char)(1u << (rnd() % 8));
			break;
		case 1: /* random byte */
			if (n) d[rnd() % n] = (unsigned char)rnd();
			break;
		case 2: /* delete a range */
			if (n > 1) {
				size_t at = rnd() % n, len = 1 + rnd() % (n - at < 16 ? n - at : 16);
				memmove(d + at, d + at + len, n - at - len);
				n -= len;
			}
			break;
		case 3: /* insert random bytes */
		{
			size_t len = 1 + rnd() % 8;
			if (n + len > cap) break;
			size_t at = n ? rnd() % (n + 1) : 0;
			memmove(d + at + len, d + at, n - at);
			for (size_t i = 0; i < len; i++) d[at + i] = (unsigned char)rnd();
			n += len;
			break;
		}
		case 4: /* dictionary token */
		case 5: {
			size_t nd = 0;
			while (fuzz_dictionary[nd]) nd++;
			if (!nd) break;
			const char *tok = fuzz_dictionary[rnd() % nd];
			size_t len = strlen(tok);
			if (n + len > cap) break;
			size_t at = n ? rnd() % (n + 1) : 0;
			memmove(d + at + len, d + at, n - at);
			memcpy(d + at, tok, len);
			n += len;
			break;
		}
		case 6: /* splice from another corpus entry */
			if (ncorpus) {
				struct input *o = &corpus[rnd() % ncorpus];
				if (!o->n) break;
				size_t from = rnd() % o->n, len = 1 + rnd() % (o->n - from);
				if (len > 64) len = 64;
				if (n + len > cap) break;
				size_t at = n ? rnd() % (n + 1) : 0;
				memmove(d + at + len, d + at, n - at);
				memcpy(d + at, o->d + from, len);
				n += len;
			}
			break;
		}
	}
	return n;
}

int main(int argc, char **argv)
{
	double seconds = 5;
	long runs = -1;
	uint64_t seed = (uint64_t)time(NULL);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-t") && i + 1 < argc) seconds = atof(argv[++i]);
		else if (!strcmp(argv[i], "-n") && i + 1 < argc) runs = atol(argv[++i]);
		else if (!strcmp(argv[i], "-s") && i + 1 < argc) seed = strtoull(argv[++i], NULL, 10);
		else load_path(argv[i]);
	}
	rng = seed ? seed : 88172645463325252ULL;
	printf("%s: seed %llu, %zu corpus inputs\n", fuzz_name, (unsigned long long)seed, ncorpus);
	fflush(stdout);
	long done = 0;
	for (size_t i = 0; i < ncorpus; i++, done++)
		LLVMFuzzerTestOneInput(corpus[i].d, corpus[i].n);
	if (!ncorpus)
		add_input((const unsigned char *)"", 0);
	size_t cap = 1 << 16;
	unsigned char *buf = malloc(cap);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		if (runs >= 0 && done >= runs)
			break;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if ((double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9 > seconds)
			break;
		struct input *src = &corpus[rnd() % ncorpus];
		size_t n = src->n < cap ? src->n : cap;
		memcpy(buf, src->d, n);
		n = mutate(buf, n, cap);
		LLVMFuzzerTestOneInput(buf, n);
		done++;
	}
	free(buf);
	for (size_t i = 0; i < ncorpus; i++)
		free(corpus[i].d);
	free(corpus);
	printf("PASS: %s: %ld runs\n", fuzz_name, done);
	return 0;
}
#endif
