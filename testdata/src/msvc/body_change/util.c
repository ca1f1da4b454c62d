/* hpbuild MSVC-ABI fixture "body_change", second translation unit: identical
   in old and new. Its static helper has the same name as one in old.c/new.c,
   so the PDB holds two S_LPROC32 "helper" procedures in different modules. */
#define EXPORT __declspec(dllexport)

static int g_util_calls;                   /* .bss, S_LDATA32 */
const int g_util_table[8] = { 3, 1, 4, 1, 5, 9, 2, 6 };   /* .rdata, S_GDATA32 */

static __attribute__((noinline)) int helper(int v)
{
    g_util_calls++;
    return g_util_table[v & 7] * v;
}

EXPORT int util_mix(int a, int b)
{
    return helper(a) + helper(b);
}

int util_calls(void)
{
    return g_util_calls;
}
