namespace LossLandscape.Engine;

/// <summary>
/// Progress of a long computation (<see cref="RunLimits.Progress"/>): the stage it is in, in words, and the fraction of the
/// whole done. A computation with more to say derives its own report (training's step and losses).
/// </summary>
/// <param name="Stage">What is being done now, e.g. "dense Hessian 1234/3001" or "eigenvalues".</param>
/// <param name="Fraction">The fraction of the whole computation done, in [0, 1]; non-decreasing over one computation.</param>
public record ProgressReport(string Stage, double Fraction)
{
    /// <summary>
    /// A sink for a sub-computation that covers [<paramref name="from"/>, <paramref name="to"/>] of <paramref name="outer"/>'s
    /// whole: its fraction f is reported as from + f·(to − from), its stage prefixed by <paramref name="stage"/>.
    /// Null when <paramref name="outer"/> is null (nothing listens). Reports synchronously, on the caller's thread.
    /// </summary>
    public static IProgress<ProgressReport>? Within(IProgress<ProgressReport>? outer, double from, double to, string stage) =>
        outer is null ? null : new Subrange(outer, from, to, stage);

    /// <summary>Reports (stage, fraction) to <paramref name="sink"/>, if any.</summary>
    public static void Report(IProgress<ProgressReport>? sink, string stage, double fraction) => sink?.Report(new ProgressReport(stage, fraction));

    private sealed class Subrange(IProgress<ProgressReport> outer, double from, double to, string stage) : IProgress<ProgressReport>
    {
        public void Report(ProgressReport value) =>
            outer.Report(new ProgressReport(
                value.Stage.Length == 0 ? stage : stage.Length == 0 ? value.Stage : $"{stage} {value.Stage}",
                from + (Math.Clamp(value.Fraction, 0, 1) * (to - from))));
    }
}
