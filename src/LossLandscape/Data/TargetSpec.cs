namespace LossLandscape.Data;

/// <summary>
/// Which CSV columns are targets: <see cref="Targets"/> gives ℓ regression targets (the CLI's
/// repeatable <c>--target COL</c>), <see cref="OneHot"/> expands one class column into ℓ indicator
/// targets (<c>--one-hot COL</c>). With neither, the last column is the single target.
/// Every other column is an input.
/// </summary>
public sealed record TargetSpec(IReadOnlyList<string> Targets, string? OneHot = null)
{
    /// <summary>The last column as the single regression target.</summary>
    public static TargetSpec LastColumn { get; } = new([], null);

    /// <summary>Regression targets.</summary>
    public static TargetSpec Regression(params string[] columns) => new(columns);

    /// <summary>One-hot targets from a class column.</summary>
    public static TargetSpec Classes(string column) => new([], column);
}
