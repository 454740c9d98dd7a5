/* libmilter/mfapi.h (Estafette): a libmilter-compatible API for filters that run inside esmtpd.
 *
 * Source-compatible with Sendmail's libmilter mfapi.h: a filter written for libmilter builds
 * unchanged against this header (-I<prefix>/include/estafette, so <libmilter/mfapi.h> finds it)
 * and links with libestafette_milter.a (filters/libmilter_shim) into a shared object that
 * esmtpd loads (`filters = module:/path/x.so`). The shim calls the filter's main() once at load
 * time, where smfi_register() records the filter and smfi_main() returns MI_SUCCESS at once;
 * the xxfi_* callbacks then run on the shim's worker threads (per session in order, never on
 * esmtpd's loop), so they may block as they do under libmilter.
 * smfi_setconn, smfi_settimeout, smfi_setbacklog, smfi_setdbg, smfi_opensocket,
 * smfi_setmaxdatasize and smfi_stop are accepted and have nothing to do in-process.
 * Besides Sendmail's names it defines ESTAFETTE_MILTER_SHIM, for sources that want to know.
 * See docs/filter-authors.md. */
#ifndef _LIBMILTER_MFAPI_H
#define _LIBMILTER_MFAPI_H 1

#ifndef SMFI_VERSION
#define SMFI_VERSION 0x01000001 /* libmilter 1.0.1, as Debian's */
#endif
#define SM_LM_VRS_MAJOR(v) (((v)&0x7f000000) >> 24)
#define SM_LM_VRS_MINOR(v) (((v)&0x007fff00) >> 8)
#define SM_LM_VRS_PLVL(v) ((v)&0x0000007f)

/* Defined by this header only (not by Sendmail's): a filter can tell that it is built for
 * Estafette's shim (`#ifdef ESTAFETTE_MILTER_SHIM`); the value is the shim's version. */
#define ESTAFETTE_MILTER_SHIM 2

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "libmilter/mfdef.h"

/* __P and SM__P, which older milters use in their own prototypes, as Sendmail's header. */
#ifndef __P
#define __P(X) X
#endif
#ifndef SM__P
#define SM__P(X) X
#endif

/* bool as Sendmail's header gives it: <stdbool.h> only with SM_CONF_STDBOOL_H; else, in C, a
 * typedef (not a macro) unless the source has one already. So the sample idiom
 * `#ifndef bool / #define bool int / #define TRUE 1 / #define FALSE 0 / #endif` works as with
 * Debian's libmilter-dev, and so does a source that includes <stdbool.h> itself. (C23 has bool
 * as a keyword: nothing to do.) */
#if SM_CONF_STDBOOL_H
#include <stdbool.h>
#elif !defined(__cplusplus) && !(defined(__STDC_VERSION__) && __STDC_VERSION__ > 201710L)
#ifndef bool
#ifndef __bool_true_false_are_defined
typedef int bool;
#define false 0
#define true 1
#define __bool_true_false_are_defined 1
#endif
#endif
#endif

#define LIBMILTER_API extern

#ifdef __cplusplus
extern "C" {
#endif

#ifndef _SOCK_ADDR
#define _SOCK_ADDR struct sockaddr
#endif

#define MI_SUCCESS 0
#define MI_FAILURE (-1)

typedef struct smfi_str SMFICTX; /* one SMTP session; opaque */
typedef struct smfi_str* SMFICTX_PTR;
typedef struct smfiDesc smfiDesc_str;
typedef struct smfiDesc* smfiDesc_ptr;

typedef int sfsistat; /* what a callback answers: SMFIS_* */

struct smfiDesc {
  char* xxfi_name;          /* filter name */
  int xxfi_version;         /* SMFI_VERSION */
  unsigned long xxfi_flags; /* SMFIF_* actions the filter may take */
  sfsistat (*xxfi_connect)(SMFICTX*, char*, _SOCK_ADDR*);
  sfsistat (*xxfi_helo)(SMFICTX*, char*);
  sfsistat (*xxfi_envfrom)(SMFICTX*, char**);
  sfsistat (*xxfi_envrcpt)(SMFICTX*, char**);
  sfsistat (*xxfi_header)(SMFICTX*, char*, char*);
  sfsistat (*xxfi_eoh)(SMFICTX*);
  sfsistat (*xxfi_body)(SMFICTX*, unsigned char*, size_t);
  sfsistat (*xxfi_eom)(SMFICTX*);
  sfsistat (*xxfi_abort)(SMFICTX*);
  sfsistat (*xxfi_close)(SMFICTX*);
  sfsistat (*xxfi_unknown)(SMFICTX*, const char*); /* never called by esmtpd */
  sfsistat (*xxfi_data)(SMFICTX*);
  sfsistat (*xxfi_negotiate)(SMFICTX*, unsigned long, unsigned long, unsigned long, unsigned long,
                             unsigned long*, unsigned long*, unsigned long*, unsigned long*);
};

/* Set-up (main()) */
LIBMILTER_API int smfi_opensocket(bool);
LIBMILTER_API int smfi_register(struct smfiDesc);
LIBMILTER_API int smfi_main(void);
LIBMILTER_API int smfi_setbacklog(int);
LIBMILTER_API int smfi_setdbg(int);
LIBMILTER_API int smfi_settimeout(int);
LIBMILTER_API int smfi_setconn(char*);
LIBMILTER_API int smfi_stop(void);
LIBMILTER_API size_t smfi_setmaxdatasize(size_t);
LIBMILTER_API int smfi_version(unsigned int*, unsigned int*, unsigned int*);

/* Actions (xxfi_flags) */
#define SMFIF_NONE 0x00000000L
#define SMFIF_ADDHDRS 0x00000001L
#define SMFIF_CHGBODY 0x00000002L
#define SMFIF_MODBODY SMFIF_CHGBODY
#define SMFIF_ADDRCPT 0x00000004L
#define SMFIF_DELRCPT 0x00000008L
#define SMFIF_CHGHDRS 0x00000010L
#define SMFIF_QUARANTINE 0x00000020L
#define SMFIF_CHGFROM 0x00000040L
#define SMFIF_ADDRCPT_PAR 0x00000080L
#define SMFIF_SETSYMLIST 0x00000100L

/* Macro stages (smfi_setsymlist) */
#define SMFIM_NOMACROS (-1)
#define SMFIM_FIRST 0
#define SMFIM_CONNECT 0
#define SMFIM_HELO 1
#define SMFIM_ENVFROM 2
#define SMFIM_ENVRCPT 3
#define SMFIM_DATA 4
#define SMFIM_EOM 5
#define SMFIM_EOH 6
#define SMFIM_LAST 6

/* Callback answers */
#define SMFIS_CONTINUE 0
#define SMFIS_REJECT 1
#define SMFIS_DISCARD 2
#define SMFIS_ACCEPT 3
#define SMFIS_TEMPFAIL 4
#define SMFIS_NOREPLY 7
#define SMFIS_SKIP 8
#define SMFIS_ALL_OPTS 10

/* During a callback */
LIBMILTER_API char* smfi_getsymval(SMFICTX*, char*);
LIBMILTER_API int smfi_setreply(SMFICTX*, char*, char*, char*);
LIBMILTER_API int smfi_setmlreply(SMFICTX*, const char*, const char*, ...);
LIBMILTER_API int smfi_setpriv(SMFICTX*, void*);
LIBMILTER_API void* smfi_getpriv(SMFICTX*);
LIBMILTER_API int smfi_setsymlist(SMFICTX*, int, char*);

/* xxfi_eom only */
LIBMILTER_API int smfi_addheader(SMFICTX*, char*, char*);
LIBMILTER_API int smfi_chgheader(SMFICTX*, char*, int, char*);
LIBMILTER_API int smfi_insheader(SMFICTX*, int, char*, char*);
LIBMILTER_API int smfi_chgfrom(SMFICTX*, char*, char*);
LIBMILTER_API int smfi_addrcpt(SMFICTX*, char*);
LIBMILTER_API int smfi_addrcpt_par(SMFICTX*, char*, char*);
LIBMILTER_API int smfi_delrcpt(SMFICTX*, char*);
LIBMILTER_API int smfi_progress(SMFICTX*);
LIBMILTER_API int smfi_replacebody(SMFICTX*, unsigned char*, int);
LIBMILTER_API int smfi_quarantine(SMFICTX* ctx, char* reason);

#ifdef __cplusplus
}
#endif

#endif /* _LIBMILTER_MFAPI_H */
