/* no_init.c: a shared object without estafette_filter_init; esmtpd must refuse it. */
int estafette_filter_initialise(void);

int estafette_filter_initialise(void) {
  return 1;
}
