using System.Globalization;
using LossLandscape.Engine;
using static TorchSharp.torch;

namespace LossLandscape.Problem;

/// <summary>The losses a problem can have (<see cref="LossFunction"/>).</summary>
public enum LossKind
{
    /// <summary>The paper's L = Σ_k |H_k|^a over all rows and outputs (a = 2: the sum of squared residuals): the default.</summary>
    Squared,

    /// <summary>The mean squared error (1/(dℓ)) Σ_k H_k², PyTorch's <c>MSELoss()</c> (reduction "mean").</summary>
    Mse,

    /// <summary>
    /// The mean cross-entropy (1/d) Σᵢ −Σⱼ yᵢⱼ log softmax(f(xᵢ))ⱼ, PyTorch's <c>CrossEntropyLoss()</c> (reduction "mean"): with
    /// one-hot targets yᵢ (class labels) −log softmax(f(xᵢ))_{cᵢ}, with class probabilities their cross-entropy.
    /// </summary>
    CrossEntropy,
}

/// <summary>
/// The loss of a problem: how the outputs f(xᵢ) and the targets yᵢ of the rows make L. One value, used by every
/// evaluation of the single-process problem (<see cref="ResidualMap"/>) and sent to a cluster's shards, so that every
/// estimator, path, slice and optimizer takes any loss; the paper's geometry of M (certificates, the walk on M, the
/// construction, the gram spectrum and its zero rule) needs <see cref="IsResidualSum"/> and refuses the others
/// (<see cref="RequireResidualSum"/>).
/// </summary>
/// <param name="Kind">Which loss.</param>
/// <param name="Exponent">The exponent a of <see cref="LossKind.Squared"/> (a ≥ 1); 2 for the others, which have none.</param>
public sealed record LossFunction(LossKind Kind, double Exponent = 2.0)
{
    /// <summary>The names of the losses on the command line, in <see cref="LossKind"/>'s order.</summary>
    public static IReadOnlyList<string> Names { get; } = ["squared", "mse", "cross-entropy"];

    /// <summary>The paper's loss L = Σ|H_k|^a (default a = 2).</summary>
    public static LossFunction Squared(double exponent = 2.0) => new(LossKind.Squared, exponent);

    /// <summary>The mean squared error.</summary>
    public static LossFunction Mse { get; } = new(LossKind.Mse);

    /// <summary>The mean cross-entropy of the softmax of the outputs.</summary>
    public static LossFunction CrossEntropy { get; } = new(LossKind.CrossEntropy);

    /// <summary>The loss named <paramref name="name"/> (<see cref="Names"/>), with <paramref name="exponent"/> for squared.</summary>
    /// <exception cref="LandscapeInputException">An unknown name, or an exponent with another loss than squared.</exception>
    public static LossFunction Parse(string name, double exponent = 2.0)
    {
        ArgumentNullException.ThrowIfNull(name);
        int k = Names.ToList().IndexOf(name);
        if (k < 0)
        {
            throw new LandscapeInputException($"the loss '{name}' is not one of {string.Join(", ", Names)}");
        }
        if (k != 0 && exponent != 2.0)
        {
            throw new LandscapeInputException($"the loss {name} has no exponent (only squared takes one, L = Σ|H_k|^a)");
        }
        return new LossFunction((LossKind)k, exponent);
    }

    /// <summary>The exponent, checked: a finite a ≥ 1.</summary>
    public double Exponent { get; init; } = Exponent >= 1.0 && !double.IsInfinity(Exponent)
        ? Exponent
        : throw new LandscapeInputException(FormattableString.Invariant($"the loss exponent a must be a finite number ≥ 1, got {Exponent}"), nameof(Exponent));

    /// <summary>The name on the command line and in the JSON (<see cref="Names"/>).</summary>
    public string Name => Names[(int)Kind];

    /// <summary>Whether L is the paper's Σ|H_k|^a, whose zero set is M = H⁻¹(0): what the geometry of M needs.</summary>
    public bool IsResidualSum => Kind == LossKind.Squared;

    /// <summary>
    /// The a of L = Σ|H_k|^a for the squared loss; NaN for the others, which are not of that form (so that no rule of the
    /// paper's loss, such as ∇²L = 2JᵀJ on M for a = 2, is ever applied to them).
    /// </summary>
    public double ResidualExponent => IsResidualSum ? Exponent : double.NaN;

    /// <summary>L as a formula, for tables and notes.</summary>
    public string Formula => Kind switch
    {
        LossKind.Squared => string.Create(CultureInfo.InvariantCulture, $"L = Σ|H_k|^a, a = {Exponent:G6}"),
        LossKind.Mse => "L = (1/dℓ) Σ H_k² (mean squared error)",
        _ => "L = (1/d) Σᵢ −Σⱼ yᵢⱼ log softmax(f(xᵢ))ⱼ (mean cross-entropy)",
    };

    /// <summary>
    /// Refuses, in one line naming <paramref name="what"/> and the reason, a loss that is not the paper's Σ|H_k|^a: the
    /// computation is about M = H⁻¹(0) and the Hessian there.
    /// </summary>
    /// <exception cref="LandscapeInputException">The loss is not <see cref="LossKind.Squared"/>.</exception>
    public void RequireResidualSum(string what)
    {
        if (IsResidualSum)
        {
            return;
        }
        throw new LandscapeInputException(Kind == LossKind.CrossEntropy
            ? $"{what} is about the set of global minima M = H⁻¹(0) of L = Σ|H_k|^a; under cross-entropy that set is empty (its infimum 0 is approached only as ‖p‖ → ∞), so {what} does not apply; use the squared loss"
            : $"{what} is stated for the paper's L = Σ|H_k|^a; the mean squared error is that sum divided by dℓ (the same M, a rescaled Hessian): use the squared loss");
    }

    /// <summary>
    /// L's share from a batch of rows: Σ over the batch of each row's term, each normalised by the whole problem's
    /// <paramref name="rows"/> (d) as the loss's mean demands, so that the batches' shares sum to L. In the autograd graph
    /// of <paramref name="outputs"/>.
    /// </summary>
    /// <param name="outputs">f(x) for the batch, b × ℓ.</param>
    /// <param name="targets">y for the batch, b × ℓ.</param>
    /// <param name="rows">d, the problem's rows (not the batch's).</param>
    internal Tensor Value(Tensor outputs, Tensor targets, long rows)
    {
        switch (Kind)
        {
            case LossKind.Squared:
                return OfResiduals(outputs - targets);
            case LossKind.Mse:
                var r = outputs - targets;
                return r.mul(r).sum().Over((double)rows * outputs.shape[1]);
            default:
                return nn.functional.log_softmax(outputs, 1).mul(targets).sum().neg().Over(rows);
        }
    }

    /// <summary>
    /// Σ_k |h_k|^a of residuals <paramref name="h"/> (any shape), for the squared loss: a = 2 by the product, which is exact
    /// and keeps second derivatives simple; else |h|^a. In the autograd graph of <paramref name="h"/>.
    /// </summary>
    /// <exception cref="InvalidOperationException">The loss is not <see cref="LossKind.Squared"/> (its L is not a function of H alone).</exception>
    internal Tensor OfResiduals(Tensor h) => Kind != LossKind.Squared
        ? throw new InvalidOperationException($"the {Name} loss is not a sum over the residuals H")
        : Exponent == 2.0 ? h.mul(h).sum() : h.abs().Power(Exponent).sum();

    /// <summary>
    /// A square root of the loss's curvature in the outputs, row by row: Sᵢ (ℓ × c) with SᵢSᵢᵀ = ∂²ℓᵢ/∂f² (the middle of the
    /// generalised Gauss–Newton matrix, <see cref="CurvatureTimes"/>), as a b × ℓ × c tensor, so that G = Σᵢ (SᵢᵀJᵢ)ᵀ(SᵢᵀJᵢ).
    /// √2·I (c = ℓ) for the squared loss a = 2; diag √(a(a − 1)|h|^{a−2}) for other a; √(2/(dℓ))·I for the mean squared
    /// error; (diag √π − π√πᵀ)·√(w/d) for cross-entropy (π = softmax(f(xᵢ)), w = Σⱼ yᵢⱼ), which squares to (diag π − ππᵀ)·w/d
    /// because Σπ = 1.
    /// </summary>
    /// <remarks>
    /// The "type-2" factor of Martens &amp; Grosse 2015 ("Optimizing neural networks with Kronecker-factored approximate
    /// curvature", §5): exact, where the Monte Carlo Fisher (<see cref="SampledCurvatureSquareRoot"/>) is its one-sample estimate.
    /// </remarks>
    /// <param name="outputs">f(x) for the batch, b × ℓ (detached or not: only its values are read).</param>
    /// <param name="targets">y for the batch, b × ℓ.</param>
    /// <param name="rows">d, the problem's rows.</param>
    internal Tensor CurvatureSquareRoot(Tensor outputs, Tensor targets, long rows)
    {
        using var scope = NewDisposeScope();
        var f = outputs.detach().to_type(ScalarType.Float64);
        long b = f.shape[0], l = f.shape[1];
        var identity = eye(l, dtype: ScalarType.Float64).unsqueeze(0).expand(b, l, l);
        switch (Kind)
        {
            case LossKind.Squared when Exponent == 2.0:
                return identity.Times(Math.Sqrt(2.0)).MoveToOuterDisposeScope();
            case LossKind.Squared:
                var h = (f - targets.to_type(ScalarType.Float64)).abs();
                var second = h.Power(Exponent - 2.0).Times(Exponent * (Exponent - 1.0));
                return diag_embed(second.sqrt()).MoveToOuterDisposeScope();
            case LossKind.Mse:
                return identity.Times(Math.Sqrt(2.0 / ((double)rows * l))).MoveToOuterDisposeScope();
            default:
                var pi = nn.functional.softmax(f, 1);
                var root = pi.sqrt();
                // diag √π − π √πᵀ: (b, ℓ, ℓ).
                var s = diag_embed(root) - pi.unsqueeze(2).mul(root.unsqueeze(1));
                var weight = targets.to_type(ScalarType.Float64).sum(1).Over(rows).sqrt().reshape(b, 1, 1);
                return s.mul(weight).MoveToOuterDisposeScope();
        }
    }

    /// <summary>
    /// The Monte Carlo Fisher's factor: <paramref name="samples"/> columns per row whose outer products average to the loss's
    /// curvature in the outputs, sᵢₘ = ∇_f(−log p(ŷₘ | f(xᵢ)))·(the loss's scale)/√M with ŷₘ drawn from the model's own
    /// predictive distribution: ŷ ~ Cat(π) for cross-entropy, sᵢₘ = (π − e_ŷ)·√(w/d)/√M; ŷ ~ N(f, I) for the squared loss
    /// (a = 2) and the mean squared error, sᵢₘ = ε·√2/√M and ε·√(2/(dℓ))/√M. A b × ℓ × M tensor; E[Σₘsᵢₘsᵢₘᵀ] = ∂²ℓᵢ/∂f².
    /// </summary>
    /// <remarks>
    /// Martens &amp; Grosse 2015, §5 (the sampled Fisher of KFAC); Kunstner, Balles &amp; Hennig 2019 for why the empirical Fisher
    /// (the observed labels) is not an approximation of the curvature. Seeded by <paramref name="rng"/> (System.Random), so the
    /// draws do not depend on libtorch's generator.
    /// </remarks>
    /// <exception cref="LandscapeInputException">The squared loss with a ≠ 2, which is the negative log-likelihood of no distribution.</exception>
    internal Tensor SampledCurvatureSquareRoot(Tensor outputs, Tensor targets, long rows, int samples, Random rng)
    {
        ArgumentNullException.ThrowIfNull(rng);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(samples);
        if (Kind == LossKind.Squared && Exponent != 2.0)
        {
            throw new LandscapeInputException(FormattableString.Invariant($"the Monte Carlo Fisher needs a loss that is a negative log-likelihood (squared with a = 2, mse, cross-entropy); L = Σ|H_k|^a with a = {Exponent} is none: use the exact output curvature"));
        }
        using var scope = NewDisposeScope();
        var f = outputs.detach().to_type(ScalarType.Float64);
        long b = f.shape[0], l = f.shape[1];
        var draws = new double[b, l, samples];
        if (Kind == LossKind.CrossEntropy)
        {
            var pi = nn.functional.softmax(f, 1);
            var weight = targets.to_type(ScalarType.Float64).sum(1).Over(rows).sqrt().data<double>().ToArray();
            var p = pi.contiguous().data<double>().ToArray();
            for (long i = 0; i < b; i++)
            {
                for (int m = 0; m < samples; m++)
                {
                    // ŷ ~ Cat(π) by inversion of one uniform draw.
                    double u = rng.NextDouble(), cumulative = 0;
                    long drawn = l - 1;
                    for (long j = 0; j < l; j++)
                    {
                        cumulative += p[(i * l) + j];
                        if (u < cumulative)
                        {
                            drawn = j;
                            break;
                        }
                    }
                    for (long j = 0; j < l; j++)
                    {
                        draws[i, j, m] = (p[(i * l) + j] - (j == drawn ? 1.0 : 0.0)) * weight[i];
                    }
                }
            }
            return tensor(draws, dtype: ScalarType.Float64).Times(1.0 / Math.Sqrt(samples)).MoveToOuterDisposeScope();
        }
        double scale = Kind == LossKind.Mse ? Math.Sqrt(2.0 / ((double)rows * l)) : Math.Sqrt(2.0);
        for (long i = 0; i < b; i++)
        {
            for (int m = 0; m < samples; m++)
            {
                for (long j = 0; j < l; j++)
                {
                    draws[i, j, m] = SeededNormal.Next(rng);
                }
            }
        }
        return tensor(draws, dtype: ScalarType.Float64).Times(scale / Math.Sqrt(samples)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The loss's second derivative in the outputs times <paramref name="u"/>, row by row: for each row i the ℓ × ℓ matrix
    /// ∂²ℓᵢ/∂f² applied to uᵢ, for a block of k columns (<paramref name="u"/> is bℓ × k, sample-major like H). The middle of
    /// the generalised Gauss–Newton matrix G = Jᵀ (∂²ℓ/∂f²) J: a(a − 1)|h|^{a−2} (2 for a = 2) for squared, 2/(dℓ) for the
    /// mean squared error, (diag π − ππᵀ)/d for cross-entropy (π = softmax(f(xᵢ)), times Σⱼ yᵢⱼ, 1 for one-hot targets).
    /// </summary>
    internal Tensor CurvatureTimes(Tensor outputs, Tensor targets, Tensor u, long rows)
    {
        long b = outputs.shape[0], l = outputs.shape[1], k = u.shape[1];
        switch (Kind)
        {
            case LossKind.Squared:
                if (Exponent == 2.0)
                {
                    return u.Times(2.0);
                }
                var h = (outputs - targets).detach().reshape(-1);
                return u.mul(h.abs().Power(Exponent - 2.0).Times(Exponent * (Exponent - 1.0)).to_type(ScalarType.Float64).unsqueeze(1));
            case LossKind.Mse:
                return u.Times(2.0 / ((double)rows * l));
            default:
                var pi = nn.functional.softmax(outputs.detach(), 1).unsqueeze(2); // b × ℓ × 1
                var weight = targets.sum(1).reshape(b, 1, 1).Over(rows);
                var v = u.reshape(b, l, k);
                var product = pi.mul(v) - pi.mul(pi.mul(v).sum(1, keepdim: true));
                return product.mul(weight).reshape(b * l, k);
        }
    }
}
