/* hpbuild MSVC-ABI fixtures: the tiny runtime every case links instead of
   the CRT (clang --target=*-pc-windows-msvc -ffreestanding, lld-link
   /nodefaultlib). The DLL entry point and the memory helpers clang may call. */
typedef unsigned long DWORD;
typedef int BOOL;
typedef void *HINSTANCE;

#ifdef _M_IX86
#define WINAPI __stdcall
#else
#define WINAPI
#endif

int g_attached;

BOOL WINAPI _DllMainCRTStartup(HINSTANCE h, DWORD reason, void *reserved)
{
    (void)h;
    (void)reserved;
    if (reason == 1)
        g_attached++;
    return 1;
}

void *memset(void *d, int c, __SIZE_TYPE__ n)
{
    volatile unsigned char *p = d;
    while (n--)
        *p++ = (unsigned char)c;
    return d;
}

void *memcpy(void *d, const void *s, __SIZE_TYPE__ n)
{
    volatile unsigned char *p = d;
    const unsigned char *q = s;
    while (n--)
        *p++ = *q++;
    return d;
}
