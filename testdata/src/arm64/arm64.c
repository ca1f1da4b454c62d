/* An ARM64 DLL (clang + lld-link, no CRT): hpbuild lists it as unsupported (bundle tests). */
int __stdcall _DllMainCRTStartup(void *h, unsigned r, void *p) { (void)h; (void)r; (void)p; return 1; }
__declspec(dllexport) int add(int a, int b) { return a + b; }
