using System.Globalization;

namespace LossLandscape.Engine;

/// <summary>
/// A dense object would not fit the memory budget. The message is one line: what needs how many GB, the budget, and
/// the alternative that does fit.
/// </summary>
public sealed class MemoryBudgetExceededException : Exception
{
    /// <summary>Creates the exception for <paramref name="what"/>, needing <paramref name="requiredBytes"/> against <paramref name="budgetBytes"/>.</summary>
    /// <param name="what">What would be allocated, e.g. "the dense 3001 × 3001 Hessian".</param>
    /// <param name="requiredBytes">The bytes it needs, every matrix live at once counted.</param>
    /// <param name="budgetBytes">The budget it exceeds.</param>
    /// <param name="alternative">What to do instead, e.g. "use Lanczos for a few extreme eigenpairs, or raise the budget".</param>
    public MemoryBudgetExceededException(string what, long requiredBytes, long budgetBytes, string alternative)
        : base(string.Create(CultureInfo.InvariantCulture,
            $"{what} needs {requiredBytes / 1e9:G3} GB, over the memory budget of {budgetBytes / 1e9:G3} GB; {alternative}"))
    {
        RequiredBytes = requiredBytes;
        BudgetBytes = budgetBytes;
        Alternative = alternative;
    }

    /// <summary>The bytes the refused object needs.</summary>
    public long RequiredBytes { get; }

    /// <summary>The budget it exceeds.</summary>
    public long BudgetBytes { get; }

    /// <summary>What to do instead.</summary>
    public string Alternative { get; }
}

/// <summary>The one memory budget of the library's dense objects, and the one check against it.</summary>
public static class MemoryBudget
{
    /// <summary>
    /// The default budget: 2 GiB, about four float64 matrices of 8 000 × 8 000 — room for a dense spectrum (matrix,
    /// symmetrised copy, eigh's workspace) at n ≈ 9 000, and well within the memory of a laptop.
    /// </summary>
    public const long DefaultBytes = 2L << 30;

    /// <summary>The bytes of a dense float64 rows × cols matrix, 8·rows·cols (saturating at <see cref="long.MaxValue"/>).</summary>
    public static long DenseMatrixBytes(long rows, long cols)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(cols);
        double bytes = 8.0 * rows * cols;
        return bytes >= long.MaxValue ? long.MaxValue : 8L * rows * cols;
    }

    /// <summary>Throws <see cref="MemoryBudgetExceededException"/> when <paramref name="requiredBytes"/> &gt; <paramref name="budgetBytes"/>.</summary>
    /// <param name="what">What would be allocated.</param>
    /// <param name="requiredBytes">The bytes it needs.</param>
    /// <param name="budgetBytes">The budget.</param>
    /// <param name="alternative">What to do instead, named in the message.</param>
    public static void Require(string what, long requiredBytes, long budgetBytes, string alternative)
    {
        if (requiredBytes > budgetBytes)
        {
            throw new MemoryBudgetExceededException(what, requiredBytes, budgetBytes, alternative);
        }
    }
}
