using System.CommandLine;
using LossLandscape.Data;
using LossLandscape.Models;

namespace LossLandscape.Cli;

/// <summary>The options every command shares, and their interpretation.</summary>
public static class CommonOptions
{
    /// <summary><c>--data FILE.csv</c>, <c>builtin:NAME</c> or <c>synthetic:D,P[,L[,SEED]]</c>.</summary>
    public static Option<string?> Data() => new("--data")
    {
        Description = $"CSV file with a header row, builtin:digits|iris|diabetes, or synthetic:D,P[,L[,SEED]] (default {DatasetLoader.DefaultSource})",
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
    public static Option<string?> Json() => new("--json") { Description = "also write the machine-readable result to this file" };

    /// <summary><c>--model FILE</c>.</summary>
    public static Option<string> Model(bool required = true) => new("--model")
    {
        Description = "a model file (losslandscape.mlp/1 or losslandscape.dag/1)",
        Required = required,
    };

    /// <summary>The data options of one command, added to it together.</summary>
    public sealed class DataOptions
    {
        private readonly Option<string?> _data = Data();
        private readonly Option<string[]> _target = Target();
        private readonly Option<string?> _oneHot = OneHot();
        private readonly Option<bool> _dedupe = new("--dedupe") { Description = "keep one row of each set of duplicate inputs when their targets agree (refuses when they conflict)" };

        /// <summary>Adds the options to <paramref name="command"/>.</summary>
        public DataOptions(Command command)
        {
            command.Options.Add(_data);
            command.Options.Add(_target);
            command.Options.Add(_oneHot);
            command.Options.Add(_dedupe);
        }

        /// <summary>Loads the data the options name.</summary>
        public Dataset Load(ParseResult result)
        {
            var targets = result.GetValue(_target) ?? [];
            var oneHot = result.GetValue(_oneHot);
            if (targets.Length > 0 && oneHot is not null)
            {
                throw new UsageException("give --target or --one-hot, not both");
            }
            var data = DatasetLoader.Load(result.GetValue(_data), new TargetSpec(targets, oneHot));
            return result.GetValue(_dedupe) ? data.Dedupe() : data;
        }

        /// <summary>The options as typed settings, read but not yet loaded (see <see cref="DataSettings.Load"/>).</summary>
        internal DataSettings Bind(ParseResult result) =>
            new(result.GetValue(_data), result.GetValue(_target) ?? [], result.GetValue(_oneHot), result.GetValue(_dedupe));
    }

    /// <summary>Loads a model file; a missing file is bad input.</summary>
    public static NetworkPoint LoadModel(string path) => ModelFile.Load(path);

    /// <summary><c>--seed S</c> (default 0); <paramref name="description"/> says what it seeds.</summary>
    internal static Option<int> Seed(string description) => new("--seed") { Description = description, DefaultValueFactory = _ => 0 };

    /// <summary><c>--batch-size B</c> (default: the command's); <paramref name="description"/> says what a batch is.</summary>
    internal static Option<int?> BatchSize(string description) => new("--batch-size") { Description = description };
}
