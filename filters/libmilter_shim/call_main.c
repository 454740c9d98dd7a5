/* call_main.c: the libmilter shim's call of the filter's own main() (C++ may not call main).
 * The filter's shared object is linked with -Wl,-Bsymbolic, so this is the filter's main(), not
 * esmtpd's. */
extern int main(int argc, char** argv);

int estafette_shim_call_main(int argc, char** argv);

int estafette_shim_call_main(int argc, char** argv) {
  return main(argc, argv);
}
