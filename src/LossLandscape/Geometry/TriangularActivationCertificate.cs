using LossLandscape.Problem;
using LossLandscape.Engine;
using LossLandscape.Models;
using static TorchSharp.torch;

namespace LossLandscape.Geometry;

/// <summary>
/// The outcome of <see cref="TriangularActivationCertificate.Check"/>: whether the last hidden layer's activation matrix
/// A (d × h) contains a d × d submatrix that a row order and a column choice make lower triangular with a nonzero
/// diagonal, every entry above the diagonal exactly zero.
/// </summary>
/// <param name="Holds">Whether the pattern was found; then rank A = d and rank J ≥ ℓ·d exactly.</param>
/// <param name="D">The number of data points d (rows of A).</param>
/// <param name="Outputs">ℓ, the number of outputs (copies of A in the output layer's block of J).</param>
/// <param name="RowOrder">Data rows in triangular order (row k has its diagonal in unit <c>Units[k]</c>); empty when the pattern fails.</param>
/// <param name="Units">The hidden units (columns of A) matched to <c>RowOrder</c>; empty when the pattern fails.</param>
/// <param name="MinDiagonalActivation">min_k σ(Z[RowOrder[k], Units[k]]) over the diagonal (0 when the pattern fails).</param>
/// <param name="Basis">
/// <see cref="TriangularActivationCertificate.Basis"/> when the pattern holds; "not applicable: …" when the check does not
/// apply (not an <see cref="Mlp"/>, or the last hidden activation is not rectified); "pattern does not hold" otherwise.
/// </param>
/// <param name="Failure">Null when the pattern holds; otherwise which row and unit broke it.</param>
public sealed record TriangularActivationResult(
    bool Holds, int D, int Outputs, int[] RowOrder, int[] Units, double MinDiagonalActivation, string Basis, string? Failure)
{
    /// <summary>The rank of J the pattern proves: ℓ·d when it holds, else 0 (nothing proved).</summary>
    public int ProvenRank => Holds ? Outputs * D : 0;
}

/// <summary>
/// An exact lower bound on rank J at points built by Lemma 3.3: the output layer's block of J is ℓ copies of the last
/// hidden layer's activation matrix A (d × h), and where rows and d of the columns of A can be ordered so that it is lower
/// triangular with a nonzero diagonal, rank A = d and rank J ≥ ℓd, whatever the condition number of J.
/// </summary>
/// <remarks>
/// <para>
/// Lemma 3.3 of the paper orders the data by a projection a·xᵢ and switches unit k on past the k-th breakpoint, so
/// A[i, k] = σ(α(a·xᵢ − b_k)) is zero for k above i in that order; for a rectified σ (Definition 3.1: σ(z) = 0 for
/// z ≤ 0, σ(z) &gt; 0 for z &gt; 0) those entries are exactly zero, not small. Remark 4.2's copies repeat the pattern in
/// each block of d units; one block suffices for rank A = d.
/// </para>
/// <para>
/// Output layer f_j = Σ_u W[j, u]·A[i, u] + b_j, so ∂f_j(xᵢ)/∂W[j′, u] = 1[j = j′]·A[i, u]: the columns of J for the
/// output weights form a block-diagonal matrix diag(A, …, A) with ℓ blocks (rows (i, j) in the library's order i·ℓ + j),
/// whose rank is ℓ·rank A. A triangular d × d matrix with nonzero diagonal is nonsingular, so rank J ≥ ℓd = the number
/// of rows of J: rank J = ℓd exactly.
/// </para>
/// <para>
/// The decision is made on signs, not magnitudes. An entry counts as zero when its computed pre-activation z satisfies
/// z ≤ −e and as switched on when z &gt; e and the computed σ(z) ≠ 0, where e = γ_{m}·(|W||a| + |b|), γ_m = m·u/(1 − m·u),
/// m = fan-in + 1, u = 2⁻⁵³, is the standard forward error bound of an inner product (Higham, Accuracy and Stability of
/// Numerical Algorithms, 2nd ed., §3.1, eq. 3.5): the sign of z for the layer's input a as computed is then certain.
/// An entry between −e and e counts as possibly nonzero and never as a diagonal. The rounding of the layers before the
/// last (and of the input scaling) is not bounded: the certificate is for the last layer's input as the network computes it.
/// </para>
/// <para>
/// Finding the order: a column whose possibly-nonzero entries among the remaining rows are a single certain-nonzero
/// entry is the last column of a triangular arrangement of those rows; removing its row and column and repeating finds the
/// arrangement whenever one exists (deleting the same index k from a triangular arrangement leaves one), in O(d·h).
/// </para>
/// </remarks>
public static class TriangularActivationCertificate
{
    /// <summary>The basis string reported for a rank decided by this pattern.</summary>
    public const string Basis = "exact: triangular activation block";

    /// <summary>Unit roundoff of float64, u = 2⁻⁵³ (half of <see cref="Float64.Epsilon"/>).</summary>
    private const double UnitRoundoff = Float64.Epsilon / 2;

    /// <summary>
    /// The bytes <see cref="Check"/> holds at once, about: six d × h arrays (Z, the rounding bound, σ(Z), and the managed
    /// copies of the two sign masks and the activations) and two d × fan-in (the layer's input and its absolute value).
    /// </summary>
    public static long RequiredBytes(IResidualProblem map)
    {
        ArgumentNullException.ThrowIfNull(map);
        if (map.Model is not NetworkModel { Network: Mlp mlp } || mlp.Layers.Count < 2)
        {
            return 0;
        }
        var last = mlp.Layers[^2];
        long d = map.Data.Count;
        return checked((6 * MemoryBudget.DenseMatrixBytes(d, last.Out)) + (2 * MemoryBudget.DenseMatrixBytes(d, last.In)));
    }

    /// <summary>Checks the pattern at <paramref name="map"/>'s point; not applicable unless the model is an <see cref="Mlp"/> whose last hidden activation is rectified.</summary>
    public static TriangularActivationResult Check(IResidualProblem map)
    {
        ArgumentNullException.ThrowIfNull(map);
        int d = map.Data.Count, l = map.Data.OutputDim;
        if (map.Model is not NetworkModel { Network: Mlp mlp } model)
        {
            return NotApplicable(d, l, "not a layered network (Mlp)");
        }
        var layers = mlp.Layers;
        if (layers.Count < 2 || layers[^2].Activation is not { IsRectified: true } sigma)
        {
            return NotApplicable(d, l, "the last hidden activation is not rectified (Definition 3.1)");
        }
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var p = model.Parameters.detach();
        var last = layers[^2];
        var input = mlp.LayerInput(p, map.Data.Read(0, d).Inputs.reshape(d, -1), layers.Count - 2);
        var w = Mlp.Weight(p, last);
        var b = Mlp.Bias(p, last);
        var z = nn.functional.linear(input, w, b);
        // Higham (3.5): |fl(wᵀa + b) − (wᵀa + b)| ≤ γ_m·(|w|ᵀ|a| + |b|), m = fan-in + 1 products and sums.
        double m = last.In + 1;
        double gamma = m * UnitRoundoff / (1 - (m * UnitRoundoff));
        var bound = nn.functional.linear(input.abs(), w.abs(), b.abs()).TimesInPlace(gamma);
        var activation = sigma.Apply(z);
        var possiblyNonzero = z.gt(bound.neg()).contiguous().data<bool>().ToArray();
        var switchedOn = z.gt(bound).logical_and(activation.Unequal(0)).contiguous().data<bool>().ToArray();
        var values = activation.contiguous().data<double>().ToArray();
        return Arrange(possiblyNonzero, switchedOn, values, d, last.Out, l);
    }

    /// <summary>
    /// Finds the triangular arrangement in a d × h pattern (row-major): <paramref name="possiblyNonzero"/> marks entries
    /// not certainly zero, <paramref name="switchedOn"/> entries certainly nonzero, <paramref name="values"/> the activations.
    /// </summary>
    /// <param name="possiblyNonzero">d·h flags: the entry may be nonzero.</param>
    /// <param name="switchedOn">d·h flags: the entry is certainly nonzero (a subset of <paramref name="possiblyNonzero"/>).</param>
    /// <param name="values">d·h activations σ(z), for the reported diagonal.</param>
    /// <param name="d">Rows (data points).</param>
    /// <param name="h">Columns (hidden units).</param>
    /// <param name="outputs">ℓ.</param>
    public static TriangularActivationResult Arrange(bool[] possiblyNonzero, bool[] switchedOn, double[] values, int d, int h, int outputs)
    {
        ArgumentNullException.ThrowIfNull(possiblyNonzero);
        ArgumentNullException.ThrowIfNull(switchedOn);
        ArgumentNullException.ThrowIfNull(values);
        long size = (long)d * h;
        if (possiblyNonzero.Length != size || switchedOn.Length != size || values.Length != size)
        {
            throw new ArgumentException($"the pattern must have d·h = {size} entries");
        }
        if (h < d)
        {
            return Failed(possiblyNonzero, switchedOn, d, h, outputs, $"h = {h} units < d = {d} rows");
        }
        // count[u] = #{remaining rows i : A[i, u] possibly nonzero}.
        var count = new int[h];
        for (int i = 0; i < d; i++)
        {
            for (int u = 0; u < h; u++)
            {
                if (possiblyNonzero[(long)i * h + u])
                {
                    count[u]++;
                }
            }
        }
        var removed = new bool[d];
        var used = new bool[h];
        var queue = new Queue<int>(Enumerable.Range(0, h).Where(u => count[u] == 1));
        var rows = new int[d];
        var units = new int[d];
        int placed = 0;
        while (placed < d && queue.Count > 0)
        {
            int u = queue.Dequeue();
            if (used[u] || count[u] != 1)
            {
                continue;
            }
            int row = -1;
            for (int i = 0; i < d && row < 0; i++)
            {
                if (!removed[i] && possiblyNonzero[(long)i * h + u])
                {
                    row = i;
                }
            }
            if (!switchedOn[(long)row * h + u])
            {
                continue; // its one entry is not certainly nonzero: not usable as a diagonal
            }
            // Unit u is the diagonal of row `row`, last among the remaining rows.
            used[u] = true;
            removed[row] = true;
            rows[d - 1 - placed] = row;
            units[d - 1 - placed] = u;
            placed++;
            for (int v = 0; v < h; v++)
            {
                if (possiblyNonzero[(long)row * h + v] && --count[v] == 1 && !used[v])
                {
                    queue.Enqueue(v);
                }
            }
        }
        if (placed < d)
        {
            return Failed(possiblyNonzero, switchedOn, d, h, outputs, $"after {placed} of {d} rows no unit is switched on in exactly one of the remaining rows");
        }
        double minDiagonal = Enumerable.Range(0, d).Min(k => Math.Abs(values[((long)rows[k] * h) + units[k]]));
        return new TriangularActivationResult(true, d, outputs, rows, units, minDiagonal, Basis, null);
    }

    private static TriangularActivationResult NotApplicable(int d, int l, string why) =>
        new(false, d, l, [], [], 0, "not applicable: " + why, why);

    /// <summary>
    /// Names the first entry that breaks the pattern in the candidate order (rows by the number of possibly nonzero
    /// entries, ascending; units by the same count, descending; ties in index order), scanned row by row.
    /// </summary>
    private static TriangularActivationResult Failed(bool[] possiblyNonzero, bool[] switchedOn, int d, int h, int outputs, string summary)
    {
        int RowCount(int i) => Enumerable.Range(0, h).Count(u => possiblyNonzero[((long)i * h) + u]);
        int UnitCount(int u) => Enumerable.Range(0, d).Count(i => possiblyNonzero[((long)i * h) + u]);
        var rowOrder = Enumerable.Range(0, d).OrderBy(RowCount).ThenBy(i => i).ToArray();
        var unitOrder = Enumerable.Range(0, h).OrderByDescending(UnitCount).ThenBy(u => u).Take(d).ToArray();
        string detail = "";
        for (int k = 0; k < Math.Min(d, unitOrder.Length) && detail.Length == 0; k++)
        {
            int i = rowOrder[k];
            if (!switchedOn[((long)i * h) + unitOrder[k]])
            {
                detail = $"; in the order by switched-on counts, row {i} (position {k}) is not certainly switched on in its diagonal unit {unitOrder[k]}";
            }
            for (int j = k + 1; j < unitOrder.Length && detail.Length == 0; j++)
            {
                if (possiblyNonzero[((long)i * h) + unitOrder[j]])
                {
                    detail = $"; in the order by switched-on counts, row {i} (position {k}) is switched on in unit {unitOrder[j]} (position {j}) above the diagonal";
                }
            }
        }
        string why = summary + detail;
        return new TriangularActivationResult(false, d, outputs, [], [], 0, "pattern does not hold", why);
    }
}
