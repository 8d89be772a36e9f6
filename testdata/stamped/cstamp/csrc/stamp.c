/* The compiler's clock, or SOURCE_DATE_EPOCH when it is set (gcc >= 7, clang, zig cc). */
const char *cstamp_built(void) { return __DATE__ " " __TIME__; }
