/*
 * static_nss.c: linked into the `ferry` command only when it is linked
 * statically (configure: CLI_STATIC), together with the linker options
 * --wrap=dlopen --wrap=getaddrinfo --wrap=gethostbyname.
 *
 * The chart engine needs libcrypto (sha256sum, genCA, ...), and the static
 * libcrypto.a carries its DSO loader and BIO socket code, which call dlopen,
 * getaddrinfo and gethostbyname. glibc's static versions of those need the
 * shared libraries of the glibc they were linked with at run time, and the
 * linker warns about every call to them. `ferry` never loads a shared object
 * nor resolves a host name (its network commands run in ferry-client, which
 * is dynamic), so with --wrap those calls reach the functions below instead:
 * each fails the way the real call fails when nothing can be loaded or
 * resolved, and nothing calls glibc's, so nothing is warned about.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netdb.h>
#include <stddef.h>

void *__wrap_dlopen(const char *file, int mode);
int __wrap_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
		       struct addrinfo **res);
struct hostent *__wrap_gethostbyname(const char *name);

void *__wrap_dlopen(const char *file, int mode)
{
	(void)file;
	(void)mode;
	return NULL;
}

int __wrap_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
		       struct addrinfo **res)
{
	(void)node;
	(void)service;
	(void)hints;
	if (res)
		*res = NULL;
	return EAI_FAIL;
}

struct hostent *__wrap_gethostbyname(const char *name)
{
	(void)name;
	h_errno = NO_RECOVERY;
	return NULL;
}
