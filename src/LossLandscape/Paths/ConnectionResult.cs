using System.Text.Json.Serialization;
using LossLandscape.Engine;

namespace LossLandscape.Paths;

/// <summary>A method of joining two minima.</summary>
public enum ConnectMethod
{
    /// <summary>The straight line (1 − t)A + tB.</summary>
    Linear,

    /// <summary>A Bézier curve with trainable bends (Garipov et al. 2018).</summary>
    Bezier,

    /// <summary>A polygonal chain with trainable bends (Garipov et al. 2018).</summary>
    Polychain,

    /// <summary>Nudged elastic band with AutoNEB's pivot insertion (Draxler et al. 2018).</summary>
    Neb,

    /// <summary>A path inside M: tangent predictor, Gauss–Newton corrector, certified vertex by vertex.</summary>
    Manifold,
}

/// <summary>Settings shared by every method of <see cref="PathConnection"/>.</summary>
/// <param name="Points">P, the evenly spaced points of the common measurement (<see cref="PathEvaluation.DefaultPoints"/>).</param>
/// <param name="MaxEvaluations">
/// The most gradient evaluations of the trained curves (bezier, polychain) and of NEB, and the most Jacobian
/// factorizations of the manifold path; <see cref="DefaultMaxEvaluations"/>.
/// </param>
/// <param name="Seed">Seed of the t ~ U(0, 1) draws of the curves.</param>
/// <param name="Bends">Points of a Bézier curve or polygonal chain, the two endpoints included (3: one trainable bend, as Garipov et al.).</param>
/// <param name="Tolerance">The on-M tolerance on max|H| (absolute): the manifold path's retraction and certificate.</param>
/// <param name="LearningRate">The curves' and NEB's step size; null: chosen by each method as its documentation says.</param>
public sealed record ConnectOptions(
    int Points = PathEvaluation.DefaultPoints,
    int MaxEvaluations = ConnectOptions.DefaultMaxEvaluations,
    int Seed = 0,
    int Bends = 3,
    double Tolerance = 1e-10,
    double? LearningRate = null)
{
    /// <summary>
    /// 2000 evaluations: chosen so that the trained curves and NEB each see a few hundred full passes per trainable point on
    /// the small networks of the tests and benchmarks, while a run on digits stays within minutes.
    /// </summary>
    public const int DefaultMaxEvaluations = 2000;
}

/// <summary>One segment of a certified manifold path (between vertices k and k + 1).</summary>
/// <param name="Index">k.</param>
/// <param name="Length">‖vₖ₊₁ − vₖ‖.</param>
/// <param name="VertexMaxAbsResidual">max|H| at its two vertices.</param>
/// <param name="ChordMaxAbsResidual">max|H| at the 9 interior points of the path between them (the chord projected onto M).</param>
/// <param name="StraightChordMaxAbsResidual">max|H| at the 9 interior points of the straight chord, before projection: how far linear interpolation between the vertices leaves M.</param>
/// <param name="SigmaMinStart">σ_min(J) (the ℓd-th singular value) at vₖ.</param>
/// <param name="SigmaMinEnd">σ_min(J) at vₖ₊₁.</param>
/// <param name="MaxProjectionDistance">The largest distance from a straight-chord point to its projection onto M.</param>
/// <param name="Holds">Whether every check of the segment passed.</param>
public sealed record PathSegmentCertificate(int Index, double Length, double VertexMaxAbsResidual, double ChordMaxAbsResidual, double StraightChordMaxAbsResidual,
    double SigmaMinStart, double SigmaMinEnd, double MaxProjectionDistance, bool Holds);

/// <summary>
/// The certificate of a manifold path: every vertex and every one of the 9 interior points of every segment has
/// max|H| ≤ <see cref="Tolerance"/>, and every vertex is a regular point (rank J = ℓd, decided across its gap).
/// </summary>
/// <param name="Tolerance">The on-M tolerance (absolute).</param>
/// <param name="Holds">Whether the certificate holds for the whole path, and the path reached B.</param>
/// <param name="ReachedEnd">Whether the last vertex is B.</param>
/// <param name="Progress">1 − ‖p_last − B‖ / ‖A − B‖: how far towards B the path got (1 when it reached B).</param>
/// <param name="IrregularVertices">Vertices where rank J = ℓd was not decided.</param>
/// <param name="MinSigmaMin">The smallest σ_min(J) over the vertices.</param>
/// <param name="Segments">Per segment.</param>
public sealed record ManifoldPathCertificate(double Tolerance, bool Holds, bool ReachedEnd, double Progress, int IrregularVertices, double MinSigmaMin,
    IReadOnlyList<PathSegmentCertificate> Segments);

/// <summary>What one method produced: the path, its common measurement, its cost and how it ended.</summary>
/// <param name="Method">The method.</param>
/// <param name="Aligned">Whether B was permuted to match A first (weight matching).</param>
/// <param name="Path">The path, vertices from A.</param>
/// <param name="Profile">The measured points (<see cref="PathEvaluation"/>).</param>
/// <param name="Measures">Max L, barrier, max|H|, length ratio.</param>
/// <param name="Evaluations">What building the path cost.</param>
/// <param name="Seconds">Wall time of building and measuring.</param>
/// <param name="Status">How the method ended.</param>
/// <param name="Detail">Why it ended so, in one line (where it stopped and why, for a manifold path that did not reach B).</param>
/// <param name="Certificate">The manifold path's certificate; null for the other methods.</param>
/// <remarks>In JSON: everything but the path and its points, with <see cref="Vertices"/>; the CLI writes the measures beside them.</remarks>
public sealed record ConnectionResult(
    ConnectMethod Method,
    bool Aligned,
    [property: JsonIgnore] ConnectingPath Path,
    [property: JsonIgnore] IReadOnlyList<PathPoint> Profile,
    [property: JsonIgnore] PathMeasures Measures,
    EvaluationCounts Evaluations,
    double Seconds,
    SolverStatus Status,
    string? Detail,
    ManifoldPathCertificate? Certificate)
{
    /// <summary>True only for a manifold path whose certificate holds.</summary>
    public bool Certified => Certificate?.Holds == true;

    /// <summary>The number of vertices of <see cref="Path"/>.</summary>
    public int Vertices => Path.Vertices.Count;
}
