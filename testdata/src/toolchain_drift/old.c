/* hpbuild fixture "toolchain_drift": the same source built with another
   optimisation level (old -O2, new -Os), the way a different compiler
   version or flags rebuild every function. No CRT (-nostartfiles) so that
   the case's own 24 functions are the image. old.c and new.c are the same. */
#include <windows.h>

#define EXPORT __declspec(dllexport)

BOOL WINAPI DllMainEntry(HINSTANCE h, DWORD reason, LPVOID reserved)
{
    (void)h;
    (void)reason;
    (void)reserved;
    return TRUE;
}

EXPORT int f00(int a, int b)
{
    int r = 1;
    for (int i = 0; i < b; i++)
        r += (a ^ (i * 3)) % 7 + (r >> 1);
    return r * 2;
}

EXPORT int f01(int a, int b)
{
    int r = 2;
    for (int i = 0; i < b; i++)
        r += (a ^ (i * 4)) % 8 + (r >> 2);
    return r * 3;
}

EXPORT int f02(int a, int b)
{
    int r = 3;
    for (int i = 0; i < b; i++)
        r += (a ^ (i * 5)) % 9 + (r >> 3);
    return r * 4;
}

EXPORT int f03(int a, int b)
{
    int r = 4;
    for (int i = 0; i < b; i++)
        r += (a ^ (i * 6)) % 10 + (r >> 4);
    return r * 5;
}

EXPORT int f04(int a, int b)
{
    int r = 5;
    for (int i = 0; i < b; i++)
        r += (a ^ (i * 7)) % 11 + (r >> 5);
    return r * 6;
}

EXPORT int f05(int a, int b)
{
    int r = 6;
    for (int i = 0; i < b; i++)
        r += (a ^ (i * 8)) % 12 + (r >> 1);
    return r * 7;
}

EXPORT int f06(int a, int b)
{
    int r = 7;
    for (int i = 0; i < b; i++)
        r += (a ^ (i * 9)) % 13 + (r >> 2);
    return r * 8;
}

EXPORT int f07(int a, int b)
{
    int r = 8;
    for (int i = 0; i < b; i++)
        r += (a ^ (i * 10)) % 14 + (r >> 3);
    return r * 9;
}

EXPORT int f08(int a, int b)
{
    int r = 9;
    for (int i = 0; i < b; i++)
        r += (a ^ (i * 11)) % 15 + (r >> 4);
    return r * 10;
}

EXPORT int f09(int a, int b)
{
    int r = 10;
    for (int i = 0; i < b; i++)
        r += (a ^ (i * 12)) % 16 + (r >> 5);
    return r * 11;
}

EXPORT int f10(int a, int b)
{
    int r = 11;
    for (int i = 0; i < b; i++)
        r += (a ^ (i * 13)) % 17 + (r >> 1);
    return r * 12;
}

EXPORT int f11(int a, int b)
{
    int r = 12;
    for (int i = 0; i < b; i++)
        r += (a ^ (i * 14)) % 18 + (r >> 2);
    return r * 13;
}

EXPORT int f12(int a, int b)
{
    int r = 13;
    for (int i = 0; i < b; i++)
        r += (a ^ (i * 15)) % 19 + (r >> 3);
    return r * 14;
}

EXPORT int f13(int a, int b)
{
    int r = 14;
    for (int i = 0; i < b; i++)
        r += (a ^ (i * 16)) % 20 + (r >> 4);
    return r * 15;
}

EXPORT int f14(int a, int b)
{
    int r = 15;
    for (int i = 0; i < b; i++)
        r += (a ^ (i * 17)) % 21 + (r >> 5);
    return r * 16;
}

EXPORT int f15(int a, int b)
{
    int r = 16;
    for (int i = 0; i < b; i++)
        r += (a ^ (i * 18)) % 22 + (r >> 1);
    return r * 17;
}

EXPORT int f16(int a, int b)
{
    int r = 17;
    for (int i = 0; i < b; i++)
        r += (a ^ (i * 19)) % 23 + (r >> 2);
    return r * 18;
}

EXPORT int f17(int a, int b)
{
    int r = 18;
    for (int i = 0; i < b; i++)
        r += (a ^ (i * 20)) % 24 + (r >> 3);
    return r * 19;
}

EXPORT int f18(int a, int b)
{
    int r = 19;
    for (int i = 0; i < b; i++)
        r += (a ^ (i * 21)) % 25 + (r >> 4);
    return r * 20;
}

EXPORT int f19(int a, int b)
{
    int r = 20;
    for (int i = 0; i < b; i++)
        r += (a ^ (i * 22)) % 26 + (r >> 5);
    return r * 21;
}

EXPORT int f20(int a, int b)
{
    int r = 21;
    for (int i = 0; i < b; i++)
        r += (a ^ (i * 23)) % 27 + (r >> 1);
    return r * 22;
}

EXPORT int f21(int a, int b)
{
    int r = 22;
    for (int i = 0; i < b; i++)
        r += (a ^ (i * 24)) % 28 + (r >> 2);
    return r * 23;
}

EXPORT int f22(int a, int b)
{
    int r = 23;
    for (int i = 0; i < b; i++)
        r += (a ^ (i * 25)) % 29 + (r >> 3);
    return r * 24;
}

EXPORT int f23(int a, int b)
{
    int r = 24;
    for (int i = 0; i < b; i++)
        r += (a ^ (i * 26)) % 30 + (r >> 4);
    return r * 25;
}
