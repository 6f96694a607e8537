using System.Text.Json.Serialization;
using LossLandscape.Problem;
using System.Diagnostics;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using LossLandscape.Models.Activations;
using static TorchSharp.torch;

namespace LossLandscape.Construction;

/// <summary>Settings of <see cref="Lemma33Interpolation"/>.</summary>
/// <param name="Activation">A rectified σ (Definition 3.1).</param>
/// <param name="HiddenWidths">h₁..h_T; the last must be ≥ d (Corollary 3.4), the others ≥ 1.</param>
/// <param name="Scaling">The input scaling stored in the model (e.g. from --standardize), or null.</param>
/// <param name="Seed">Seed of the random candidate directions.</param>
/// <param name="Polish">Polish onto M with Gauss–Newton steps after the triangular solve.</param>
/// <param name="RelativeGoal">The goal max|f(xᵢ) − yᵢ| ≤ RelativeGoal·max(1, max|yᵢ|); default 1e−10 (the project's acceptance goal).</param>
public sealed record ConstructionOptions(
    Activation Activation,
    IReadOnlyList<int> HiddenWidths,
    InputScaling? Scaling = null,
    int Seed = 0,
    bool Polish = true,
    double RelativeGoal = 1e-10);

/// <summary>What the construction chose and how well conditioned it came out.</summary>
/// <param name="Direction">Where the projection direction a came from ("random #k", "least squares", "principal component").</param>
/// <param name="RelativeMinGap">min gap / range of the sorted projections a·xᵢ (the direction's quality).</param>
/// <param name="ScaledMinGap">The smallest gap after scaling, α·min gap: the argument σ sees on the diagonal.</param>
/// <param name="ScaledRange">α·(max − min) of the projections.</param>
/// <param name="BiasFraction">θ: unit k's breakpoint sits at s_{k−1} + θ(s_k − s_{k−1}).</param>
/// <param name="TriangularCondition">κ₁(A) = ‖A‖₁‖A⁻¹‖₁ of the lower-triangular system.</param>
/// <param name="Amplification">max_i Σ_k |A_ik||V_kj| / max(1, max|y|): how much the sum f(xᵢ) cancels; float64 rounding in f is about ε times this.</param>
/// <param name="TriangularResidual">max|f(xᵢ) − yᵢ| right after the triangular solve (the network's own forward pass).</param>
/// <param name="OutputLayerSteps">Gauss–Newton steps on the output layer alone (a triangular solve per output).</param>
/// <param name="FullSteps">Full minimum-norm Gauss–Newton steps p ← p − J⁺H (in JSON, <c>gaussNewtonSteps</c>).</param>
/// <param name="FullStepsSkipped">Why full steps were not taken, or null.</param>
/// <param name="MaxResidual">max|f(xᵢ) − yᵢ| at the end (in JSON, <c>maxAbsResidual</c>).</param>
/// <param name="Goal">RelativeGoal·max(1, max|y|).</param>
/// <param name="Candidates">How many (direction, scale, θ) candidates were tried.</param>
/// <param name="Seconds">Wall time.</param>
public sealed record ConstructionDiagnostics(
    string Direction,
    double RelativeMinGap,
    double ScaledMinGap,
    double ScaledRange,
    double BiasFraction,
    double TriangularCondition,
    double Amplification,
    double TriangularResidual,
    int OutputLayerSteps,
    [property: JsonPropertyName("gaussNewtonSteps")] int FullSteps,
    string? FullStepsSkipped,
    [property: JsonPropertyName("maxAbsResidual")] double MaxResidual,
    double Goal,
    int Candidates,
    double Seconds)
{
    /// <summary>Whether max|f(xᵢ) − yᵢ| ≤ goal.</summary>
    public bool MeetsGoal => MaxResidual <= Goal;
}

/// <summary>The constructed point and its diagnostics.</summary>
public sealed record ConstructionResult(NetworkPoint Point, ConstructionDiagnostics Diagnostics);

/// <summary>
/// Zero training error by construction: Lemma 3.3 (one hidden layer of width h ≥ d), Corollary 3.4
/// (T hidden layers, the last of width ≥ d) and Remark 4.2 (ℓ outputs), for any rectified σ.
/// </summary>
/// <remarks>
/// <para>The proof of Lemma 3.3: choose a with distinct projections sᵢ = a·xᵢ, sort them; unit k has
/// weights α·a and its breakpoint c_k between s_{k−1} and s_k, so A_ik = σ(α(sᵢ − c_k)) vanishes for
/// i &lt; k (σ is rectified) and is positive on the diagonal; the output weights solve the lower-triangular
/// system A V = Y by forward substitution; units beyond d get zero weights (<see cref="Lemma33TriangularSystem"/>).
/// For Corollary 3.4 the first T − 1 layers carry the scalar sᵢ through one unit each, mapped into a window where σ
/// is increasing (<see cref="Corollary34Prefix"/>). For Remark 4.2, ℓ copies (or one per class value) side by side
/// (<see cref="Remark42Copies"/>). Then Gauss–Newton polishes (<see cref="GaussNewtonPolish"/>).</para>
/// <para>The lemma leaves free the direction a, the scale α and where each breakpoint sits in its gap
/// (θ), and that freedom decides whether the construction is usable in float64: f(xᵢ) = Σ_k V_k A_ik
/// cancels, and its rounding error is about ε·Σ_k |V_k||A_ik|. Done literally on digits (a random
/// direction, midpoints, α = 1) the residual is about 1e17. So the candidates are scored by measurement:
/// directions by the cancellation they force (Σ_k ‖y_k − y_{k−1}‖·range/gap_k over the sorted order,
/// the size of the slopes a piecewise-linear interpolant needs), then for the best few every (α, θ) on a
/// grid is solved and the one with the smallest measured residual wins.</para>
/// </remarks>
public static class Lemma33Interpolation
{
    /// <summary>
    /// Builds the network and the point, polishing it on a <see cref="ResidualMap"/> over <paramref name="data"/> in this
    /// process; <see cref="ArgumentException"/> for unusable input (the message says why).
    /// </summary>
    /// <param name="data">The data to fit.</param>
    /// <param name="options">Widths, activation, goal, polish.</param>
    /// <param name="limits">
    /// The budget of the network (<see cref="Mlp.RequireFits"/>) and of the polish's full Gauss–Newton steps (they factor
    /// J, <see cref="JacobianFactorization.RequiredBytes"/>; above the budget only the output layer is polished). The
    /// token, checked before each (α, θ) solve of the search and at every batch of rows of the polish; cancelling throws
    /// <see cref="OperationCanceledException"/>: a half-built network is no point to keep.
    /// </param>
    public static ConstructionResult Construct(Dataset data, ConstructionOptions options, RunLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(options);
        return Build(data, options, problemAt: null, limits);
    }

    /// <summary>
    /// Builds the network and the point, polishing it (and measuring max|H| before and after) on the problem that
    /// <paramref name="problemAt"/> opens at the triangular solve's point. The construction itself (the search, the
    /// triangular solves, the output layer's Φ) is linear algebra on <paramref name="data"/> here; every H, every product
    /// with J and its factors is the problem's (a sharded one computes them where its rows are).
    /// </summary>
    /// <param name="data">The data to fit.</param>
    /// <param name="options">Widths, activation, goal, polish.</param>
    /// <param name="problemAt">
    /// Opens the problem of the network at the point it is given on the rows of <paramref name="data"/>, in the same order
    /// (a <see cref="ResidualMap"/> over them, or the same problem elsewhere); called once, after the triangular solve. The
    /// caller owns what it returns (and disposes it), and gives it the token of <paramref name="limits"/> (the problem's
    /// <see cref="IResidualProblem.Cancellation"/>); the construction moves its point (<see cref="IResidualProblem.SetPoint"/>).
    /// </param>
    /// <param name="limits">As in <see cref="Construct(Dataset, ConstructionOptions, RunLimits)"/>.</param>
    /// <exception cref="ArgumentException">The problem has other rows, outputs or parameters than the network on <paramref name="data"/>.</exception>
    public static ConstructionResult Construct(Dataset data, ConstructionOptions options, Func<NetworkPoint, IResidualProblem> problemAt, RunLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(problemAt);
        return Build(data, options, problemAt, limits);
    }

    /// <summary>The construction (see <see cref="Construct(Dataset, ConstructionOptions, Func{NetworkPoint, IResidualProblem}, RunLimits)"/>); a null <paramref name="problemAt"/> is a <see cref="ResidualMap"/> here.</summary>
    private static ConstructionResult Build(Dataset data, ConstructionOptions options, Func<NetworkPoint, IResidualProblem>? problemAt, RunLimits? limits)
    {
        limits ??= RunLimits.Default;
        TorchRuntime.EnsureInitialized();
        var watch = Stopwatch.StartNew();
        Validate(data, options, limits);
        using var scope = NewDisposeScope();
        var sigma = options.Activation;
        int p = data.InputDim, l = data.OutputDim;
        var scaled = options.Scaling is null ? data : options.Scaling.Apply(data);
        var x = Enumerable.Range(0, scaled.Count).Select(scaled.InputRow).ToArray();
        var y = Enumerable.Range(0, data.Count).Select(data.TargetRow).ToArray();

        // 1–2. Remark 4.2: when the last hidden layer has room, each target block gets its own d units and its own
        // direction (Remark42Copies.Decompose); otherwise one copy fits all ℓ outputs. Lemma 3.3 for each block.
        double scale = Math.Max(1.0, data.MaxAbsTarget());
        double goal = options.RelativeGoal * scale;
        var blocks = Remark42Copies.Decompose(y, options.HiddenWidths[^1], options.HiddenWidths.Count);
        int tried = 0;
        var bests = blocks.Select(t => Lemma33TriangularSystem.BestCandidate(x, t, options, goal / blocks.Count, ref tried, limits)).ToArray();
        var best = bests.OrderByDescending(b => b.Amplification).First();

        // 3. The parameters, laid out as the MLP file format stores them.
        var mlp = new Mlp(p, options.HiddenWidths.Select(w => new HiddenLayer(w, sigma)).ToArray(), l).WithScaling(options.Scaling);
        var parameters = bests.Length == 1 ? Lemma33TriangularSystem.Assemble(mlp, best) : Remark42Copies.Assemble(mlp, bests);
        double condition = bests.Max(Lemma33TriangularSystem.Condition);

        // 4. The polish, measured with the network's own forward pass, on the caller's problem (default: a map here).
        var start = new NetworkPoint(mlp, parameters);
        using var model = problemAt is null ? start.ToModel() : null;
        using var map = model is null ? null : new ResidualMap(model, data, cancellation: limits.Cancellation);
        var problem = map ?? problemAt!(start) ?? throw new ArgumentException("the problem factory returned null", nameof(problemAt));
        RequireSameProblem(problem, data, mlp);
        double triangular = problem.MaxAbsResidual();
        var polish = new PolishOutcome(0, 0, null);
        if (options.Polish)
        {
            polish = GaussNewtonPolish.Run(mlp, problem, data, bests[0].Order, triangular, goal, limits);
            parameters = problem.GetPoint().data<double>().ToArray();
        }
        double final = problem.MaxAbsResidual();
        string direction = bests.Length == 1 ? best.Name : $"{bests.Length} copies (Remark 4.2), one direction each; worst: {best.Name}";
        var diagnostics = new ConstructionDiagnostics(direction, best.RelativeMinGap, best.Alpha * best.MinGap, best.Alpha * best.Range, best.Theta,
            condition, bests.Sum(b => b.Amplification) / scale, triangular, polish.OutputLayerSteps, polish.FullSteps, polish.FullStepsSkipped, final, goal, tried, watch.Elapsed.TotalSeconds);
        return new ConstructionResult(new NetworkPoint(mlp, parameters), diagnostics);
    }

    /// <summary>Refuses a problem that is not the network on the data's rows (a caller's factory that opened another).</summary>
    private static void RequireSameProblem(IResidualProblem problem, Dataset data, Mlp mlp)
    {
        if (problem.Rows != data.Count || problem.Outputs != data.OutputDim || problem.ParameterCount != mlp.ParameterCount)
        {
            throw new ArgumentException(FormattableString.Invariant(
                $"the polish's problem has {problem.Rows} rows, {problem.Outputs} outputs and {problem.ParameterCount} parameters; the network on the data has {data.Count}, {data.OutputDim} and {mlp.ParameterCount}"), "problemAt");
        }
    }

    /// <summary>
    /// How many copies Remark 4.2's decomposition would use for these targets (1 when it does not apply):
    /// with a last hidden width of at least that many times d, each copy gets its own direction.
    /// </summary>
    public static int CopiesFor(Dataset data)
    {
        ArgumentNullException.ThrowIfNull(data);
        var y = Enumerable.Range(0, data.Count).Select(data.TargetRow).ToArray();
        return Remark42Copies.Decompose(y, int.MaxValue, 1).Count;
    }

    /// <summary>Checks the hypotheses of Lemma 3.3 / Corollary 3.4, and that the network fits the budget of <paramref name="limits"/>; the messages name the fix.</summary>
    public static void Validate(Dataset data, ConstructionOptions options, RunLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(options);
        if (!options.Activation.IsRectified)
        {
            throw new LandscapeInputException($"activation '{options.Activation.Name}' is not rectified (Definition 3.1); the construction needs one of: {string.Join(", ", ActivationRegistry.All.Where(a => a.IsRectified).Select(a => a.Name))}");
        }
        if (options.HiddenWidths.Count == 0 || options.HiddenWidths.Any(w => w < 1))
        {
            throw new LandscapeInputException("the construction needs at least one hidden layer, every width ≥ 1");
        }
        // Before any matrix of the construction is allocated: the network and its activations on the d rows.
        Mlp.RequireFits(data.InputDim, options.HiddenWidths, data.OutputDim, data.Count, limits);
        if (options.HiddenWidths[^1] < data.Count)
        {
            throw new LandscapeInputException($"last hidden width h = {options.HiddenWidths[^1]} is smaller than d = {data.Count}; Lemma 3.3 needs h ≥ d, so the smallest width that works is {data.Count}");
        }
        var duplicates = data.FindDuplicateInputs();
        if (duplicates.Count > 0)
        {
            var list = string.Join("; ", duplicates.Take(5).Select(g => "rows " + string.Join(", ", g.Select(i => i + 1))));
            throw new LandscapeInputException($"{duplicates.Count} set(s) of duplicate inputs ({list}{(duplicates.Count > 5 ? "; …" : "")}; data rows counted from 1); Lemma 3.3 needs distinct inputs: remove the duplicates (Dataset.Dedupe)");
        }
    }
}
