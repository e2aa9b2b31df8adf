/// Channel reductions of the layers (BatchNorm statistics and gradients, bias gradients, pooling).
///
/// A sum written as `s += p[i]` is one dependent chain of additions: IEEE order forbids the compiler
/// to reorder it, so it runs at the adder's latency (4 cycles per element here), not its throughput,
/// and stays scalar. These keep 32 independent partial sums (`i mod 32`, two 16-lane vectors),
/// reduced at the end, then add the scalar tail. The order depends only on `count`, never on the
/// thread count (the layers split over channels, not inside a sum), and the Float rounding error
/// grows more slowly than the single chain's.
enum Reduce {
    typealias Lanes<T: Real> = SIMD16<T>

    @inline(__always)
    private static func load<T: Real>(_ p: UnsafePointer<T>, _ i: Int) -> Lanes<T> {
        UnsafeRawPointer(p + i).loadUnaligned(as: Lanes<T>.self)
    }

    /// `sum_i p[i]`.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    static func sum<T: Real>(_ p: UnsafePointer<T>, count: Int) -> T {
        var a = Lanes<T>(), b = Lanes<T>(), i = 0
        while i &+ 32 <= count { a += load(p, i); b += load(p, i &+ 16); i &+= 32 }
        var s = (a + b).sum()
        while i < count { s += p[i]; i &+= 1 }
        return s
    }

    /// `sum_i (p[i] - mean)^2`.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    static func squaredDeviations<T: Real>(_ p: UnsafePointer<T>, mean: T, count: Int) -> T {
        let m = Lanes<T>(repeating: mean)
        var a = Lanes<T>(), b = Lanes<T>(), i = 0
        while i &+ 32 <= count {
            let d = load(p, i) - m, e = load(p, i &+ 16) - m
            a += d * d; b += e * e
            i &+= 32
        }
        var s = (a + b).sum()
        while i < count { let d = p[i] - mean; s += d * d; i &+= 1 }
        return s
    }

    /// `(sum_i g[i], sum_i g[i] (p[i] - mean))` in one pass (BatchNorm backward and JVP).
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    static func sumAndDeviationProduct<T: Real>(_ g: UnsafePointer<T>, _ p: UnsafePointer<T>, mean: T,
                                                count: Int) -> (sum: T, product: T) {
        let m = Lanes<T>(repeating: mean)
        var a = Lanes<T>(), b = Lanes<T>(), i = 0
        while i &+ 16 <= count {
            let v = load(g, i)
            a += v; b += v * (load(p, i) - m)
            i &+= 16
        }
        var s = a.sum(), q = b.sum()
        while i < count { s += g[i]; q += g[i] * (p[i] - mean); i &+= 1 }
        return (s, q)
    }
}
