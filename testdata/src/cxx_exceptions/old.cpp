/* hpbuild fixture "cxx_exceptions": parse_number() (try/catch around a throwing helper) changes its body: it now skips '_' digit separators.
   old.cpp and new.cpp differ only in that change. */
#include <windows.h>
#include <new>

#define EXPORT extern "C" __declspec(dllexport)

int g_limit = 10;

struct ParseError {
    int position;
    char ch;
};

static __attribute__((noinline)) int digit_value(char c, int pos)
{
    if (c < '0' || c > '9')
        throw ParseError{pos, c};
    return c - '0';
}

EXPORT int parse_number(const char *s, int *out)
{
    int v = 0;
    try {
        for (int i = 0; s[i]; ++i) {
            v = v * 10 + digit_value(s[i], i);
        }
    } catch (const ParseError &e) {
        return -1 - e.position;
    }
    *out = v;
    return 0;
}

EXPORT int parse_limit(const char *s)
{
    int v;
    if (parse_number(s, &v) != 0)
        return g_limit;
    return v;
}
