using LossLandscape.Engine;

namespace LossLandscape.Paths;

/// <summary>A vertex of a path between two minima: its parameter t ∈ [0, 1] and the point θ(t) ∈ ℝⁿ (the model file's layout).</summary>
/// <param name="T">The path parameter: 0 at A, 1 at the path's last vertex (B when the path reached it).</param>
/// <param name="Parameters">θ(t), n numbers.</param>
public sealed record PathVertex(double T, double[] Parameters);

/// <summary>How a path runs between two consecutive vertices.</summary>
public enum PathInterpolation
{
    /// <summary>The straight chord (1 − s)vₖ + s vₖ₊₁: the linear path, the polygonal chain, NEB's pivots.</summary>
    Straight,

    /// <summary>The method's own curve, sampled at the vertices (a Bézier curve: θ(t) = Σ bᵢ,ₖ(t) θᵢ).</summary>
    Curve,

    /// <summary>
    /// The chord projected onto M: R((1 − s)vₖ + s vₖ₊₁), R the Gauss–Newton retraction in the normal space (a manifold
    /// path). A straight chord between two points of a curved M leaves M by about κh²/8 (κ the normal curvature, h the
    /// chord's length), so the path between vertices is the chord's projection, not the chord.
    /// </summary>
    Projected,
}

/// <summary>
/// A path θ: [0, 1] → ℝⁿ from A = θ(0) to θ(1), given by its vertices and how it runs between them. Every path of
/// <see cref="PathConnection"/> is measured the same way by <see cref="PathEvaluation"/>.
/// </summary>
public abstract class ConnectingPath
{
    /// <summary>Checks the vertices: at least 2, t from 0 to 1 strictly increasing, all of the same length.</summary>
    protected ConnectingPath(IReadOnlyList<PathVertex> vertices)
    {
        ArgumentNullException.ThrowIfNull(vertices);
        if (vertices.Count < 2)
        {
            throw new ArgumentException("a path has at least two vertices", nameof(vertices));
        }
        if (vertices[0].T != 0 || vertices[^1].T != 1)
        {
            throw new ArgumentException("a path's vertices run from t = 0 to t = 1", nameof(vertices));
        }
        for (int k = 1; k < vertices.Count; k++)
        {
            if (!(vertices[k].T > vertices[k - 1].T))
            {
                throw new ArgumentException($"vertex {k}: t must increase strictly", nameof(vertices));
            }
            if (vertices[k].Parameters.Length != vertices[0].Parameters.Length)
            {
                throw new ArgumentException($"vertex {k} has {vertices[k].Parameters.Length} parameters, vertex 0 has {vertices[0].Parameters.Length}", nameof(vertices));
            }
        }
        Vertices = vertices;
    }

    /// <summary>The vertices in order from A.</summary>
    public IReadOnlyList<PathVertex> Vertices { get; }

    /// <summary>How the path runs between consecutive vertices.</summary>
    public abstract PathInterpolation Interpolation { get; }

    /// <summary>The number of parameters n.</summary>
    public int ParameterCount => Vertices[0].Parameters.Length;

    /// <summary>θ(t) as a new array, for t ∈ [0, 1]; exact at the vertices.</summary>
    public abstract double[] At(double t);

    /// <summary>The segment k with t_k ≤ t ≤ t_{k+1} and the fraction s = (t − t_k)/(t_{k+1} − t_k).</summary>
    protected (int Segment, double Fraction) Locate(double t)
    {
        if (!(t >= 0 && t <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(t), t, "t must lie in [0, 1]");
        }
        int lo = 0, hi = Vertices.Count - 1;
        while (hi - lo > 1)
        {
            int mid = (lo + hi) / 2;
            if (Vertices[mid].T <= t)
            {
                lo = mid;
            }
            else
            {
                hi = mid;
            }
        }
        return (lo, (t - Vertices[lo].T) / (Vertices[lo + 1].T - Vertices[lo].T));
    }

    /// <summary>(1 − s)a + s·b as a new array, computed as a + s(b − a); exact (copies) at s = 0 and s = 1.</summary>
    public static double[] Lerp(double[] a, double[] b, double s)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        if (s == 0)
        {
            return (double[])a.Clone();
        }
        if (s == 1)
        {
            return (double[])b.Clone();
        }
        var result = new double[a.Length];
        for (int i = 0; i < a.Length; i++)
        {
            result[i] = a[i] + (s * (b[i] - a[i]));
        }
        return result;
    }

    /// <summary>The Euclidean distance ‖a − b‖.</summary>
    public static double Distance(double[] a, double[] b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        double sum = 0;
        for (int i = 0; i < a.Length; i++)
        {
            double d = a[i] - b[i];
            sum += d * d;
        }
        return Math.Sqrt(sum);
    }

    /// <summary>The inner product ⟨a, b⟩, summed in the order of the entries.</summary>
    internal static double Dot(double[] a, double[] b)
    {
        double sum = 0;
        for (int i = 0; i < a.Length; i++)
        {
            sum += a[i] * b[i];
        }
        return sum;
    }

    /// <summary>The arc length of the polygonal chain through <paramref name="points"/> up to each point (0 at the first).</summary>
    internal static double[] CumulativeLengths(IReadOnlyList<double[]> points)
    {
        var cumulative = new double[points.Count];
        for (int k = 1; k < points.Count; k++)
        {
            cumulative[k] = cumulative[k - 1] + Distance(points[k - 1], points[k]);
        }
        return cumulative;
    }

    /// <summary>Σᵢ cᵢ pᵢ, accumulated from 0 in the order of i (terms with cᵢ = 0 add exactly 0).</summary>
    internal static double[] Combine(double[][] points, IReadOnlyList<double> coefficients)
    {
        var result = new double[points[0].Length];
        for (int i = 0; i < points.Length; i++)
        {
            double c = coefficients[i];
            if (c == 0)
            {
                continue;
            }
            var p = points[i];
            for (int j = 0; j < result.Length; j++)
            {
                result[j] += c * p[j];
            }
        }
        return result;
    }
}

/// <summary>A piecewise-linear path: straight chords between its vertices (the linear path, a polygonal chain, NEB's pivots).</summary>
public sealed class PolygonalPath : ConnectingPath
{
    /// <summary>The path through <paramref name="vertices"/>.</summary>
    public PolygonalPath(IReadOnlyList<PathVertex> vertices) : base(vertices)
    {
    }

    /// <summary>The straight line from a to b, t ∈ [0, 1].</summary>
    public static PolygonalPath Line(double[] a, double[] b) => new([new PathVertex(0, (double[])a.Clone()), new PathVertex(1, (double[])b.Clone())]);

    /// <summary>Vertices at t = arc length / total length (equal spacing in t is equal spacing in ℝⁿ).</summary>
    public static PolygonalPath ByArcLength(IReadOnlyList<double[]> points) => new(ArcLengthVertices(points));

    /// <summary>
    /// The vertices through <paramref name="points"/> at t = arc length of the polygon / its total length (the last at
    /// exactly 1), for any path whose vertices are spaced by length.
    /// </summary>
    /// <exception cref="LandscapeInputException">The polygon has length 0.</exception>
    internal static List<PathVertex> ArcLengthVertices(IReadOnlyList<double[]> points)
    {
        ArgumentNullException.ThrowIfNull(points);
        var cumulative = CumulativeLengths(points);
        double total = cumulative[^1];
        if (!(total > 0))
        {
            throw new LandscapeInputException("the path has length 0: its endpoints are the same point");
        }
        return points.Select((point, k) => new PathVertex(k == points.Count - 1 ? 1 : cumulative[k] / total, point)).ToList();
    }

    /// <inheritdoc/>
    public override PathInterpolation Interpolation => PathInterpolation.Straight;

    /// <inheritdoc/>
    public override double[] At(double t)
    {
        var (k, s) = Locate(t);
        return Lerp(Vertices[k].Parameters, Vertices[k + 1].Parameters, s);
    }
}
