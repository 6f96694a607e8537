namespace LossLandscape.Engine;

/// <summary>
/// What every long computation of the library is given besides its mathematics: the memory budget its matrices are
/// checked against, the token that stops it, and the sink its progress goes to. It is passed the same way to each, as its
/// last parameter <c>limits</c> (null: <see cref="Default"/>); a refusal of the budget says what to reduce as data
/// (<see cref="BudgetRemedy"/>), which a caller such as the command line maps to its own option names.
/// </summary>
/// <param name="MemoryBudgetBytes">
/// The most memory the matrices of one operation may hold at once (<see cref="Require"/>); default
/// <see cref="MemoryBudget.DefaultBytes"/>, the library's one default. Positive.
/// </param>
/// <param name="Cancellation">
/// The one cancellation mechanism: checked between the iterations, blocks and rounds of the computation. Once it is
/// cancelled, a computation with a best point to keep (training, the walk, the paths) returns it with
/// <see cref="SolverStatus.Cancelled"/>; any other throws <see cref="OperationCanceledException"/>. Within one evaluation
/// of the problem (a product over all rows), the problem's own token is checked before each batch of rows: a
/// <c>Problem.ResidualMap</c> takes it at construction. Default: none.
/// </param>
/// <param name="Progress">
/// Receives the computation's stage and fraction done, synchronously, on the computation's thread; never a way to stop
/// it (that is <see cref="Cancellation"/>). Default: none.
/// </param>
public sealed record RunLimits(long MemoryBudgetBytes = MemoryBudget.DefaultBytes, CancellationToken Cancellation = default, IProgress<ProgressReport>? Progress = null)
{
    /// <summary>The default budget, no token, no progress.</summary>
    public static RunLimits Default { get; } = new();

    /// <summary>The memory budget, in bytes (positive).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The budget is not positive.</exception>
    public long MemoryBudgetBytes { get; init; } = MemoryBudgetBytes > 0
        ? MemoryBudgetBytes
        : throw new ArgumentOutOfRangeException(nameof(MemoryBudgetBytes), MemoryBudgetBytes, "the memory budget must be positive");

    /// <summary>Whether <see cref="Cancellation"/> has been cancelled.</summary>
    public bool IsCancellationRequested => Cancellation.IsCancellationRequested;

    /// <summary>Throws <see cref="OperationCanceledException"/> once <see cref="Cancellation"/> is cancelled.</summary>
    public void ThrowIfCancellationRequested() => Cancellation.ThrowIfCancellationRequested();

    /// <summary>
    /// Refuses an operation that would hold <paramref name="requiredBytes"/> at once when that exceeds
    /// <see cref="MemoryBudgetBytes"/> (<see cref="MemoryBudget.Require"/>).
    /// </summary>
    /// <param name="what">What needs the memory, for the message.</param>
    /// <param name="requiredBytes">Every matrix live at once, added up.</param>
    /// <param name="alternative">What fits instead, in words (no option names: see <paramref name="remedies"/>).</param>
    /// <param name="remedies">What to reduce, as data.</param>
    /// <exception cref="MemoryBudgetExceededException">requiredBytes &gt; the budget.</exception>
    public void Require(string what, long requiredBytes, string alternative, BudgetRemedy remedies = BudgetRemedy.None) =>
        MemoryBudget.Require(what, requiredBytes, MemoryBudgetBytes, alternative, remedies);

    /// <summary>Whether <paramref name="requiredBytes"/> fit the budget.</summary>
    public bool Fits(long requiredBytes) => requiredBytes <= MemoryBudgetBytes;

    /// <summary>Reports (stage, fraction) to <see cref="Progress"/>, if any.</summary>
    public void Report(string stage, double fraction) => ProgressReport.Report(Progress, stage, fraction);

    /// <summary>
    /// A check between two pieces of work: throws <see cref="OperationCanceledException"/> once <see cref="Cancellation"/>
    /// is cancelled, else reports (stage, fraction).
    /// </summary>
    public void Checkpoint(string stage, double fraction)
    {
        ThrowIfCancellationRequested();
        Report(stage, fraction);
    }

    /// <summary>
    /// The same limits for a sub-computation that covers [<paramref name="from"/>, <paramref name="to"/>] of this one's
    /// progress, its stages prefixed by <paramref name="stage"/> (<see cref="ProgressReport.Within"/>).
    /// </summary>
    public RunLimits Within(double from, double to, string stage) =>
        Progress is null ? this : this with { Progress = ProgressReport.Within(Progress, from, to, stage) };

    /// <summary>The same budget and token, reporting nothing (a sub-computation whose progress would mislead).</summary>
    public RunLimits WithoutProgress() => Progress is null ? this : this with { Progress = null };

    /// <summary>The same budget and progress, with no token (work that must finish once begun, such as measuring a best point).</summary>
    public RunLimits WithoutCancellation() => Cancellation.CanBeCanceled ? this with { Cancellation = CancellationToken.None } : this;
}
