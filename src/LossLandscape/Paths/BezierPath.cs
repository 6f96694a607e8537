namespace LossLandscape.Paths;

/// <summary>
/// A Bézier curve θ(t) = Σᵢ bᵢ,ₖ₋₁(t) θᵢ, i = 0…K − 1, with the Bernstein polynomials
/// bᵢ,ₖ₋₁(t) = C(K − 1, i) tⁱ (1 − t)^{K−1−i}, through θ₀ = θ(0) and θ_{K−1} = θ(1); its vertices are the curve sampled
/// at evenly spaced t, so the common measurement (<see cref="PathEvaluation"/>) adds 9 curve points between them.
/// </summary>
/// <remarks>
/// Garipov, Izmailov, Podoprikhin, Vetrov &amp; Wilson 2018, "Loss Surfaces, Mode Connectivity, and Fast Ensembling of
/// DNNs", §3 (the Bézier curve with one bend is their quadratic curve (1 − t)²A + 2t(1 − t)θ + t²B).
/// </remarks>
public sealed class BezierPath : ConnectingPath
{
    private readonly double[][] _controlPoints;

    private BezierPath(double[][] controlPoints, IReadOnlyList<PathVertex> vertices) : base(vertices)
    {
        _controlPoints = controlPoints;
    }

    /// <summary>The curve with <paramref name="controlPoints"/> (K ≥ 2), its vertices at tⱼ = j/(samples − 1).</summary>
    /// <param name="controlPoints">θ₀ … θ_{K−1}, all of the same length; copied.</param>
    /// <param name="samples">Vertices: the curve at this many evenly spaced t (≥ 2), e.g. the measurement's P.</param>
    public static BezierPath Create(IReadOnlyList<double[]> controlPoints, int samples)
    {
        ArgumentNullException.ThrowIfNull(controlPoints);
        if (controlPoints.Count < 2)
        {
            throw new ArgumentException("a Bézier curve has at least two control points", nameof(controlPoints));
        }
        if (samples < 2)
        {
            throw new ArgumentOutOfRangeException(nameof(samples), samples, "a path has at least two vertices");
        }
        int n = controlPoints[0].Length;
        if (controlPoints.Any(p => p.Length != n))
        {
            throw new ArgumentException("the control points differ in length", nameof(controlPoints));
        }
        var copy = controlPoints.Select(p => (double[])p.Clone()).ToArray();
        var vertices = new PathVertex[samples];
        for (int j = 0; j < samples; j++)
        {
            double t = j == samples - 1 ? 1.0 : (double)j / (samples - 1);
            vertices[j] = new PathVertex(t, Evaluate(copy, t));
        }
        return new BezierPath(copy, vertices);
    }

    /// <summary>The control points θ₀ … θ_{K−1} (θ₀ = A, θ_{K−1} = B).</summary>
    public IReadOnlyList<double[]> ControlPoints => _controlPoints;

    /// <inheritdoc/>
    public override PathInterpolation Interpolation => PathInterpolation.Curve;

    /// <inheritdoc/>
    public override double[] At(double t)
    {
        if (!(t >= 0 && t <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(t), t, "t must lie in [0, 1]");
        }
        return Evaluate(_controlPoints, t);
    }

    /// <summary>
    /// The Bernstein polynomial bᵢ,ₘ(t) = C(m, i) tⁱ (1 − t)^{m−i}, 0 ≤ i ≤ m: the weight of control point i in a Bézier
    /// curve of degree m = K − 1, and ∂θ(t)/∂θᵢ. At t = 0 it is 1 for i = 0 and exactly 0 otherwise (and symmetrically at
    /// t = 1), so the curve passes through its end control points exactly.
    /// </summary>
    public static double Bernstein(int degree, int i, double t)
    {
        if (degree < 0 || i < 0 || i > degree)
        {
            throw new ArgumentOutOfRangeException(nameof(i), i, $"the Bernstein polynomials of degree {degree} are indexed 0…{degree}");
        }
        // C(m, i) by the product Π_{j=1..i} (m − i + j)/j: exact in float64 for the degrees of a few bends.
        double binomial = 1;
        for (int j = 1; j <= i; j++)
        {
            binomial = binomial * (degree - i + j) / j;
        }
        return binomial * Math.Pow(t, i) * Math.Pow(1 - t, degree - i);
    }

    /// <summary>Σᵢ bᵢ,ₖ₋₁(t) θᵢ, accumulated from 0 in the order of i (terms with bᵢ = 0 add exactly 0).</summary>
    private static double[] Evaluate(double[][] controlPoints, double t) =>
        Combine(controlPoints, [.. Enumerable.Range(0, controlPoints.Length).Select(i => Bernstein(controlPoints.Length - 1, i, t))]);
}
