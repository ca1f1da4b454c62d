/* hpbuild MSVC-ABI fixture "data_layout": struct config gains timeout_ms
   before retries (24 -> 28 bytes), so g_config changes size and every
   field after the new one moves; the PDB names the object and gives both
   sizes (S_GDATA32 and its LF_STRUCTURE). */
#define EXPORT __declspec(dllexport)

struct config {
    int verbose;
    int timeout_ms;
    int retries;
    char name[16];
};

struct config g_config = { 0, 500, 3, "default" };
int g_limit = 10;

EXPORT int config_verbose(void)
{
    return g_config.verbose;
}

EXPORT int config_retries(void)
{
    return g_config.retries;
}

EXPORT void config_set_retries(int n)
{
    g_config.retries = n < 0 ? 0 : n > g_limit ? g_limit : n;
}

EXPORT const char *config_name(void)
{
    return g_config.name;
}
