using LossLandscape.Engine;
using System.CommandLine;
using System.CommandLine.Parsing;
using LossLandscape.Data;
using LossLandscape.Models;
using LossLandscape.Problem;

namespace LossLandscape.Cli;

/// <summary>The options every command shares, and their interpretation.</summary>
internal static class CommonOptions
{
    /// <summary>The name of the model option; a command that has it requires <c>--data</c> (<see cref="DataOptions"/>).</summary>
    public const string ModelOptionName = "--model";

    /// <summary><c>--data FILE.csv</c>, <c>FILE.npz</c>, <c>idx:DIR</c>, <c>builtin:NAME</c> or <c>synthetic:D,P[,L[,SEED]]</c>.</summary>
    public static Option<string?> Data() => new("--data")
    {
        Description = $"CSV file with a header row, NumPy .npz (arrays x and y), idx:DIR (MNIST-family IDX files), builtin:digits|iris|diabetes|fashion-mnist, or synthetic:D,P[,L[,SEED]]; required with {ModelOptionName} (the data the model was fit to), otherwise default {DatasetLoader.DefaultSource} (announced on stderr)",
    };

    /// <summary><c>--target COL</c>, repeatable.</summary>
    public static Option<string[]> Target() => new("--target")
    {
        Description = "a regression target column; repeat for ℓ > 1 targets (default: the last column)",
        AllowMultipleArgumentsPerToken = false,
    };

    /// <summary><c>--one-hot COL</c>.</summary>
    public static Option<string?> OneHot() => new("--one-hot") { Description = "a class column expanded into ℓ indicator targets" };

    /// <summary><c>--standardize</c>.</summary>
    public static Option<bool> Standardize() => new("--standardize")
    {
        Description = "scale the inputs to mean 0, sd 1; the scaling is stored in the model",
    };

    /// <summary><c>--json FILE</c>.</summary>
    public static Option<string?> Json() => new("--json") { Description = "also write the machine-readable result to this file ('-': to standard output, the tables then to standard error)" };

    /// <summary><c>--model FILE</c>.</summary>
    public static Option<string> Model(bool required = true) => new(ModelOptionName)
    {
        Description = "a model file: losslandscape.mlp/1, dag/1 or seq/1 (JSON), or a TorchScript module saved by PyTorch's torch.jit.save (.pt; it takes rows of the data's shape, --input-shape)",
        Required = required,
    };

    /// <summary><c>--dtype float64|float32</c>: what a TorchScript <c>--model</c> computes in.</summary>
    public static Option<string> Dtype() => new("--dtype")
    {
        Description = "what a TorchScript --model computes in: float64 (default; float32 parameters are widened exactly) or float32 (faster; rank and inertia decisions refuse it)",
        DefaultValueFactory = _ => "float64",
    };

    /// <summary>The compute type of <c>--dtype</c>; anything else is a usage error naming the option.</summary>
    public static TorchSharp.torch.ScalarType ComputeType(string dtype) => dtype switch
    {
        "float64" => TorchSharp.torch.ScalarType.Float64,
        "float32" => TorchSharp.torch.ScalarType.Float32,
        _ => throw new UsageException($"--dtype: '{dtype}' is not float64 or float32"),
    };

    /// <summary>
    /// The data options of one command, added to it together. Where the command takes <c>--model</c>, <c>--data</c> is
    /// required: a model was fit to some data, and silently evaluating it on <see cref="DatasetLoader.DefaultSource"/>
    /// gives numbers about the wrong problem. Elsewhere (init, construct, train) the default stays, and is announced on stderr.
    /// </summary>
    public sealed class DataOptions
    {
        private readonly Option<string?> _data = Data();
        private readonly Option<string[]> _target = Target();
        private readonly Option<string?> _oneHot = OneHot();
        private readonly Option<bool> _dedupe = new("--dedupe") { Description = "keep one row of each set of duplicate inputs when their targets agree (refuses when they conflict)" };
        private readonly Option<string?> _rows = new("--rows") { Description = "a deterministic subset of the rows: N (the first N) or A:B (rows A … B − 1, counted from 0)" };
        private readonly Option<string?> _inputShape = new("--input-shape") { Description = "each row's p values viewed as this shape, e.g. 1,8,8 (row-major): CSV rows as images for a network that takes them" };
        private readonly Option<string> _split = SplitOption();

        private static Option<string> SplitOption()
        {
            var option = new Option<string>("--split") { Description = "the split of an IDX source (idx:DIR, builtin:fashion-mnist): train or test", DefaultValueFactory = _ => "train" };
            option.AcceptOnlyFromAmong([.. ArrayFileSource.IdxSplits]);
            return option;
        }

        /// <summary>Adds the options to <paramref name="command"/>.</summary>
        public DataOptions(Command command)
        {
            command.Options.Add(_data);
            command.Options.Add(_target);
            command.Options.Add(_oneHot);
            command.Options.Add(_dedupe);
            command.Options.Add(_rows);
            command.Options.Add(_inputShape);
            command.Options.Add(_split);
            // A validator runs after every option of the command is known, so the order in which --model is added does not matter.
            command.Validators.Add(RequireDataWithModel);
        }

        /// <summary>The one-line error when a command with <c>--model</c> is given no <c>--data</c>.</summary>
        public static string MissingDataMessage => $"--data is required with {ModelOptionName}: give the data the model was fit to (e.g. --data builtin:iris --one-hot species)";

        /// <summary>The stderr note when a command without a model falls back to <see cref="DatasetLoader.DefaultSource"/>.</summary>
        public static string DefaultDataNote => $"landscape: note: no --data given; using {DatasetLoader.DefaultSource}";

        private void RequireDataWithModel(CommandResult command)
        {
            if (command.GetResult(_data) is null && command.Command.Options.Any(o => o.Name == ModelOptionName))
            {
                command.AddError(MissingDataMessage);
            }
        }

        /// <summary>The options as typed settings, read but not yet loaded (see <see cref="DataSettings.Open"/>).</summary>
        internal DataSettings Bind(ParseResult result) =>
            new(result.GetValue(_data), result.GetValue(_target) ?? [], result.GetValue(_oneHot), result.GetValue(_dedupe), result.GetValue(_rows), result.GetValue(_inputShape),
                result.GetValue(_split)!);
    }

    /// <summary>
    /// Loads a model file (<see cref="ModelFile.Load"/>); a missing file is bad input. A TorchScript module takes rows of
    /// <paramref name="inputShape"/> (the data's), and without one is refused in one line naming <c>--input-shape</c>.
    /// </summary>
    public static NetworkPoint LoadModel(string path, IReadOnlyList<long>? inputShape = null, TorchSharp.torch.ScalarType computeType = TorchSharp.torch.ScalarType.Float64)
    {
        if (inputShape is null && TorchScriptNetwork.IsTorchScriptFile(path))
        {
            throw new UsageException($"--model: {path} is a TorchScript module, which does not record the shape of its input; give --input-shape C,H,W");
        }
        try
        {
            return ModelFile.Load(path, inputShape, computeType);
        }
        catch (ModelFormatException e) when (inputShape is not null && e.Message.Contains("the module's forward failed", StringComparison.Ordinal))
        {
            throw new ModelFormatException($"{e.Message} (view the rows with --input-shape C,H,W)", e);
        }
    }

    /// <summary>
    /// Refuses (<see cref="UsageException"/>, one line naming both options) an output path that names the same file as an
    /// input or another output: after resolving symbolic links, or, for existing files, by device and inode, so that a
    /// hard link counts too (<see cref="FileIdentity.SameFile"/>). No output may overwrite an input or another output.
    /// Null paths are absent options.
    /// </summary>
    internal static void RequireDistinctOutputs(IReadOnlyList<(string Option, string? Path)> inputs, IReadOnlyList<(string Option, string? Path)> outputs)
    {
        var files = inputs.Concat(outputs).ToList();
        for (int i = inputs.Count; i < files.Count; i++)
        {
            for (int j = 0; j < i; j++)
            {
                // An output written in place (standard output, /dev/null, a pipe) replaces nothing, so it may be shared.
                if (files[i].Path is { } a && files[j].Path is { } b && FileIdentity.SameFile(a, b) && !AtomicFile.WritesInPlace(a))
                {
                    string what = j < inputs.Count ? "an output must not overwrite an input" : "two outputs must not overwrite each other";
                    throw new UsageException($"{files[i].Option} and {files[j].Option} name the same file ({a}{(string.Equals(a, b, StringComparison.Ordinal) ? "" : $", {b}")}); {what}");
                }
            }
        }
    }

    /// <summary>The file <c>--data SOURCE</c> reads: null for <c>builtin:</c>, <c>synthetic:</c> and no <c>--data</c>.</summary>
    internal static string? DataFile(string? source) =>
        source is null || source.StartsWith("builtin:", StringComparison.Ordinal) || source.StartsWith("synthetic:", StringComparison.Ordinal) ? null : source;

    /// <summary><c>--seed S</c> (default 0); <paramref name="description"/> says what it seeds.</summary>
    internal static Option<int> Seed(string description) => new("--seed") { Description = description, DefaultValueFactory = _ => 0 };

    /// <summary><c>--batch-size B</c> (default: the command's); <paramref name="description"/> says what a batch is.</summary>
    /// <summary><c>--loss</c>: the loss of the problem, one of <see cref="LossFunction.Names"/>.</summary>
    internal static Option<string> Loss()
    {
        var option = new Option<string>("--loss")
        {
            Description = "the loss: squared (the paper's L = Σ|H_k|^a, the default), mse (mean squared error, PyTorch's MSELoss) or cross-entropy (mean over rows of −log softmax(f(x))_y, PyTorch's CrossEntropyLoss; one-hot or class-probability targets); what is about M (certificates, the walk, the construction, gram spectra, tangent/normal slices, connect's manifold method) needs squared",
            DefaultValueFactory = _ => LossFunction.Names[0],
        };
        option.AcceptOnlyFromAmong([.. LossFunction.Names]);
        return option;
    }

    internal static Option<int?> BatchSize(string description) => new("--batch-size") { Description = description };
}
