using LossLandscape.Cli.Commands;
using LossLandscape.Data;
using LossLandscape.Engine;

namespace LossLandscape.Cli;

/// <summary>The options that many commands share; a command says which it takes (<see cref="LandscapeCommand{TSettings, TResult}"/>).</summary>
[Flags]
internal enum SharedOptions
{
    /// <summary>None of them.</summary>
    None = 0,

    /// <summary><c>--model FILE</c> (required): the execution path loads it and builds the model.</summary>
    Model = 1,

    /// <summary><c>--data</c>, <c>--target</c>, <c>--one-hot</c>, <c>--dedupe</c>: the execution path loads the data.</summary>
    Data = 2,

    /// <summary><c>--json FILE</c>: the execution path serialises the result record there.</summary>
    Json = 4,

    /// <summary><c>--seed S</c> (default 0).</summary>
    Seed = 8,

    /// <summary><c>--batch-size B</c> (optional; must be ≥ 1 when given).</summary>
    BatchSize = 16,

    /// <summary>
    /// <c>--budget-gb G</c> (default <see cref="Engine.MemoryBudget.DefaultBytes"/>): the memory budget the command's library
    /// calls check their allocations against; a memory refusal names it as the way to raise the budget.
    /// </summary>
    Budget = 32,

    /// <summary>
    /// <c>--cluster FILE</c> (optional): the execution path builds the command's problem on the cluster's workers instead of in
    /// this process (<see cref="ClusterOptions"/>); the command's work is the same either way.
    /// </summary>
    Cluster = 64,

    /// <summary>
    /// <c>--loss squared|mse|cross-entropy</c> (default squared): the loss of the command's problem. Every command with
    /// both <see cref="Model"/> and <see cref="Data"/> takes it; a command that builds its model itself asks for it.
    /// </summary>
    Loss = 128,
}

/// <summary>
/// The settings every command's settings record derives from: the shared options, typed. The execution path of
/// <see cref="LandscapeCommand{TSettings, TResult}"/> fills them after the command's own <c>Bind</c>; an option the
/// command does not take (see <see cref="SharedOptions"/>) keeps its default here.
/// </summary>
internal abstract record LandscapeSettings
{
    /// <summary><c>--model FILE</c>, or null when the command takes no model.</summary>
    public string? Model { get; init; }

    /// <summary>The data options, or null when the command takes no data.</summary>
    public DataSettings? Data { get; init; }

    /// <summary><c>--dtype</c>: what a TorchScript model computes in, float64 (default) or float32.</summary>
    public string Dtype { get; init; } = "float64";

    /// <summary><c>--json FILE</c>, or null for no machine-readable output.</summary>
    public string? Json { get; init; }

    /// <summary><c>--seed S</c>.</summary>
    public int Seed { get; init; }

    /// <summary><c>--batch-size B</c>, or null for the command's default.</summary>
    public int? BatchSize { get; init; }

    /// <summary><c>--loss NAME</c>: the loss (<see cref="Problem.LossFunction.Names"/>), default squared.</summary>
    public string Loss { get; init; } = "squared";

    /// <summary><c>--cluster FILE</c>, or null: the problem in this process.</summary>
    public string? Cluster { get; init; }

    /// <summary><c>--budget-gb G</c>: the memory budget in GB (default <see cref="CurvatureOptions.DefaultBudgetGigabytes"/>).</summary>
    public double BudgetGigabytes { get; init; } = CurvatureOptions.DefaultBudgetGigabytes;

    /// <summary>The budget in bytes (<see cref="CurvatureOptions.BudgetBytes"/>; throws <see cref="UsageException"/> for a budget that is not positive).</summary>
    public long MemoryBudgetBytes() => CurvatureOptions.BudgetBytes(BudgetGigabytes);

    /// <summary>The budget as the library's limits, without a token or a progress sink: for the size checks of the validation step.</summary>
    public RunLimits Limits() => new(MemoryBudgetBytes());
}

/// <summary>
/// The data options, typed: <c>--data SOURCE</c> (null: <see cref="DatasetLoader.DefaultSource"/>), the
/// <c>--target</c> columns, <c>--one-hot COL</c> and <c>--dedupe</c>.
/// </summary>
internal sealed record DataSettings(string? Source, IReadOnlyList<string> Targets, string? OneHot, bool Dedupe, string? Rows = null, string? InputShape = null,
    string Split = "train")
{
    /// <summary>Refuses <c>--target</c> together with <c>--one-hot</c>.</summary>
    public void Validate()
    {
        if (Targets.Count > 0 && OneHot is not null)
        {
            throw new UsageException("give --target or --one-hot, not both");
        }
    }

    /// <summary>
    /// Opens the data (a bad file or column is a <see cref="DataFormatException"/>): array files (.npz, IDX) as rows read
    /// per batch, anything else loaded; the rows of <c>--rows</c> in the shape of <c>--input-shape</c> (<see cref="DataView"/>);
    /// deduplicated if asked (in memory); data held in memory is checked against the budget of <paramref name="limits"/>.
    /// </summary>
    public IDataSource Open(RunLimits? limits = null)
    {
        Validate();
        var opened = DatasetLoader.Open(Source, new TargetSpec(Targets, OneHot), limits, Split);
        IDataSource data;
        try
        {
            data = DataView.Of(opened, Rows, InputShape);
        }
        catch
        {
            (opened as IDisposable)?.Dispose(); // a refused view closes the files it would have read
            throw;
        }
        if (!Dedupe)
        {
            return data;
        }
        using (data as IDisposable)
        {
            return data.Load(limits).Dedupe();
        }
    }
}
