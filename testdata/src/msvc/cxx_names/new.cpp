// hpbuild MSVC-ABI fixture "cxx_names": C++ names whose undecorated forms
// collide (overloads, the same method name in two classes, a template
// instantiated twice) while their MSVC-decorated names differ. The change:
// the int overload of geo::scale() multiplies by 3 instead of 2.
#define EXPORT __declspec(dllexport)

namespace geo {

struct Point {
    int x, y;
};

__attribute__((noinline)) int scale(int v)
{
    return v * 3;
}

__attribute__((noinline)) long long scale(long long v)
{
    return v * 5;
}

class Shape {
public:
    __attribute__((noinline)) int area() const { return w * h; }
    int w = 2, h = 3;
};

class Box {
public:
    __attribute__((noinline)) int area() const { return w * h * d; }
    int w = 1, h = 2, d = 3;
};

template <typename T> __attribute__((noinline)) T twice(T v)
{
    return v + v;
}

} // namespace geo


int g_origin[2] = { 7, 11 };

EXPORT int shape_sum(int k)
{
    geo::Shape s;
    geo::Box b;
    return s.area() + b.area() + geo::scale(k) + (int)geo::scale((long long)k);
}

EXPORT long long twice_both(int a, long long b)
{
    return geo::twice(a) + geo::twice(b) + g_origin[0];
}
