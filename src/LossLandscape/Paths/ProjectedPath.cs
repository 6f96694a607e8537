using LossLandscape.Problem;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using static TorchSharp.torch;

namespace LossLandscape.Paths;

/// <summary>
/// A manifold path: between consecutive vertices vₖ, vₖ₊₁ of M it runs along the straight chord projected onto M,
/// γ(s) = R((1 − s)vₖ + s·vₖ₊₁), s ∈ [0, 1], R the retraction of <see cref="ManifoldPath"/> (chord steps
/// p ← p − J(vₖ)⁺H(p) with J frozen at the segment's first vertex, Gauss–Newton where they stall).
/// </summary>
/// <remarks>
/// <para><see cref="At"/> is exact at the vertices. At the 9 interior samples s = j/10 (j = 1…9) of each segment it returns
/// the points <see cref="ManifoldPath"/> projected and certified while it built the path (a parameter whose s lies within
/// <see cref="SampleMatch"/> of j/10 is that sample), so the common measurement (<see cref="PathEvaluation"/>, which
/// measures exactly those parameters) measures the certified points. Anywhere else it projects the chord point anew: one
/// factorization of J at vₖ (the most recent segment's is kept), then the retraction, with the model's point restored.</para>
/// <para>Not thread-safe: <see cref="At"/> moves the residual map's model (and restores it). The map must outlive the
/// path's use; <see cref="Dispose"/> frees the kept factorization (the vertices and samples stay usable).</para>
/// </remarks>
public sealed class ProjectedPath : ConnectingPath, IDisposable
{
    /// <summary>
    /// How close s·10 must be to an integer j for s to be the interior sample j/10: 1e−9. The measurement's parameters
    /// t_k + j(t_{k+1} − t_k)/10 give s = j/10 up to a few ε of rounding; 1e−9 is far above that and far below the 0.1
    /// between samples.
    /// </summary>
    public const double SampleMatch = 1e-9;

    private readonly IResidualProblem _map;
    private readonly JacobianRoute _route;
    private readonly RunLimits _budget;
    private readonly IReadOnlyDictionary<(int Segment, int Sample), double[]> _samples;
    private JacobianFactorization? _cached;
    private int _cachedSegment = -1;

    internal ProjectedPath(IReadOnlyList<PathVertex> vertices, IResidualProblem map, double tolerance, RunLimits limits,
        IReadOnlyDictionary<(int Segment, int Sample), double[]> samples) : base(vertices)
    {
        _map = map;
        Tolerance = tolerance;
        // The budget alone: a point of the path is projected whenever it is asked for, a cancelled run's path included.
        _budget = new RunLimits(limits.MemoryBudgetBytes);
        _route = JacobianFactorization.ChooseRoute(map, _budget);
        _samples = samples;
    }

    /// <inheritdoc/>
    public override PathInterpolation Interpolation => PathInterpolation.Projected;

    /// <summary>The retraction's tolerance on max|H| (absolute).</summary>
    public double Tolerance { get; }

    /// <summary>γ(t): a vertex, a certified interior sample, or the chord point projected onto M now.</summary>
    public override double[] At(double t)
    {
        var (k, s) = Locate(t);
        if (s == 0)
        {
            return (double[])Vertices[k].Parameters.Clone();
        }
        if (s == 1)
        {
            return (double[])Vertices[k + 1].Parameters.Clone();
        }
        double scaled = s * (PathEvaluation.InteriorPointsPerSegment + 1);
        int j = (int)Math.Round(scaled);
        if (Math.Abs(scaled - j) <= SampleMatch && _samples.TryGetValue((k, j), out var sample))
        {
            return (double[])sample.Clone();
        }
        return Project(k, s);
    }

    /// <summary>Frees the kept factorization of J.</summary>
    public void Dispose()
    {
        _cached?.Dispose();
        _cached = null;
        _cachedSegment = -1;
    }

    private double[] Project(int k, double s)
    {
        using var scope = NewDisposeScope();
        var saved = _map.GetPoint();
        try
        {
            if (_cachedSegment != k || _cached is null)
            {
                Dispose();
                _map.SetPoint(tensor(Vertices[k].Parameters, dtype: float64));
                _cached = JacobianFactorization.At(_map, _route, _budget);
                _cachedSegment = k;
            }
            _map.SetPoint(tensor(Lerp(Vertices[k].Parameters, Vertices[k + 1].Parameters, s), dtype: float64));
            ChordRetraction.Retract(_map, _cached, _route, Tolerance);
            return _map.GetPoint().data<double>().ToArray();
        }
        finally
        {
            _map.SetPoint(saved);
        }
    }
}
