using System.CommandLine;
using System.Text.Json.Serialization.Metadata;
using LossLandscape.Models;
using Spectre.Console;

namespace LossLandscape.Cli.Commands;

/// <summary>
/// <c>landscape export --model M --out F.pt [--json F]</c>: an MLP or a sequential network (<c>losslandscape.seq/1</c>) at
/// its point, written as a TorchScript module that PyTorch loads with <c>torch.jit.load</c> (<see cref="TorchScriptExport"/>),
/// so that a network made or trained here can be checked in PyTorch.
/// </summary>
internal sealed class ExportCommand : LandscapeCommand<ExportCommand.Settings, ExportOutput>
{
    private readonly Option<string> _output = new("--out") { Description = "the TorchScript file to write (.pt); torch.jit.load reads it", Required = true };

    private ExportCommand()
        : base("export", "Write an MLP or a layered network (losslandscape.seq/1) as a TorchScript module PyTorch loads (torch.jit.load), its parameters in float64.", SharedOptions.Model | SharedOptions.Json)
        => Add(_output);

    /// <summary>Builds the command.</summary>
    public static Command Create(CliContext context) => new ExportCommand().Build(context);

    /// <summary>The settings of <c>export</c>.</summary>
    internal sealed record Settings : LandscapeSettings
    {
        /// <summary><c>--out</c>: the TorchScript file to write.</summary>
        public string Out { get; init; } = "";
    }

    /// <inheritdoc/>
    protected internal override JsonTypeInfo<ExportOutput> JsonType => LandscapeJsonContext.Default.ExportOutput;

    /// <inheritdoc/>
    protected override Settings Bind(ParseResult result) => new() { Out = result.GetValue(_output)! };

    /// <inheritdoc/>
    protected internal override IEnumerable<(string Option, string? Path)> OutputFiles(Settings settings) => [("--out", settings.Out)];

    /// <inheritdoc/>
    public override void Validate(Settings settings)
    {
        if (settings.Model is { } path && TorchScriptNetwork.IsTorchScriptFile(path))
        {
            throw new UsageException($"--model: {path} is already a TorchScript module; export writes MLPs and losslandscape.seq/1 networks");
        }
    }

    /// <inheritdoc/>
    protected override ExportOutput Execute(CommandRun run, Settings settings)
    {
        var network = run.Point.Network;
        TorchScriptExport.Save(settings.Out, network, run.Point.Parameters);
        return new ExportOutput(run.ModelPath, settings.Out, ModelFile.TorchScriptFormat, TorchScriptExport.ClassName, network.InputShape, network.OutputDim, network.ParameterCount);
    }

    /// <inheritdoc/>
    protected override void Render(CliContext context, Settings settings, ExportOutput result) =>
        context.Console.WriteLine($"wrote {result.Out}: TorchScript module {result.ClassName}, input rows [{string.Join(", ", result.InputShape)}], ℓ = {result.OutputDim}, n = {result.N} (float64, eval mode); in PyTorch: torch.jit.load(\"{result.Out}\")");
}

/// <summary>The result of <c>landscape export</c>, and its JSON.</summary>
/// <param name="Model">The model file read.</param>
/// <param name="Out">The TorchScript file written.</param>
/// <param name="Format">The written format, <see cref="ModelFile.TorchScriptFormat"/>.</param>
/// <param name="ClassName">The module's class in the file.</param>
/// <param name="InputShape">The shape of one input row.</param>
/// <param name="OutputDim">Outputs ℓ.</param>
/// <param name="N">Parameters n, the module's named_parameters() flattened in order.</param>
internal sealed record ExportOutput(string Model, string Out, string Format, string ClassName, IReadOnlyList<long> InputShape, int OutputDim, int N);
