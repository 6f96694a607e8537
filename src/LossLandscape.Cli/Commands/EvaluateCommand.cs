using System.CommandLine;
using System.Globalization;
using LossLandscape.Geometry;
using Spectre.Console;
using static TorchSharp.torch;

namespace LossLandscape.Cli.Commands;

/// <summary>
/// <c>landscape evaluate --model M --data D (--target|--one-hot) [--exponent a] [--json F]</c>:
/// the residual map at the model's point: L = Σ|H_k|^a, max |H_k|, ‖∇L‖.
/// </summary>
public static class EvaluateCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create(CliContext context)
    {
        var command = new Command("evaluate", "Evaluate the residual map H, the loss L = Σ|H_k|^a and its gradient at a model's point.");
        var model = CommonOptions.Model();
        command.Options.Add(model);
        var data = new CommonOptions.DataOptions(command);
        var exponent = new Option<double>("--exponent") { Description = "a ≥ 1 in L = Σ|H_k|^a (2: squared loss; 1: Remark 2.2)", DefaultValueFactory = _ => 2.0 };
        var json = CommonOptions.Json();
        command.Options.Add(exponent);
        command.Options.Add(json);
        command.SetAction(result =>
        {
            LandscapeApp.Initialize();
            var point = CommonOptions.LoadModel(result.GetValue(model)!);
            var set = data.Load(result);
            double a = result.GetValue(exponent);
            if (!(a >= 1) || double.IsInfinity(a))
            {
                throw new UsageException($"--exponent: {a} is not a finite number ≥ 1");
            }
            using var scope = NewDisposeScope();
            using var m = point.ToModel();
            using var map = new ResidualMap(m, set, a);
            double loss = map.Loss();
            double maxRes = map.Residuals().abs().max().item<double>();
            double gradNorm = map.Gradient().norm().item<double>();
            var table = new Table().AddColumns("quantity", "value");
            string F(double v) => v.ToString("G6", CultureInfo.InvariantCulture);
            table.AddRow("data", Markup.Escape($"{set.Source}: d = {set.Count}, p = {set.InputDim}, ℓ = {set.OutputDim}"));
            table.AddRow("parameters n", point.Network.ParameterCount.ToString(CultureInfo.InvariantCulture));
            table.AddRow("constraints ℓd", map.Constraints.ToString(CultureInfo.InvariantCulture));
            table.AddRow($"loss L (a = {F(a)})", F(loss));
            table.AddRow("max |H_k|", F(maxRes));
            table.AddRow("‖∇L‖", F(gradNorm));
            context.Console.Write(table);
            JsonOutput.Write(result.GetValue(json), w =>
            {
                w.WriteNumber("n", point.Network.ParameterCount);
                w.WriteNumber("d", set.Count);
                w.WriteNumber("outputs", set.OutputDim);
                w.WriteNumber("constraints", map.Constraints);
                w.WriteNumber("exponent", a);
                w.WriteNumber("loss", loss);
                w.WriteNumber("maxAbsResidual", maxRes);
                w.WriteNumber("gradientNorm", gradNorm);
            });
            return LandscapeApp.Success;
        });
        return command;
    }
}
