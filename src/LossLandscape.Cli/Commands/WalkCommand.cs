using System.CommandLine;
using System.Globalization;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using LossLandscape.Paths;
using Spectre.Console;

namespace LossLandscape.Cli.Commands;

/// <summary>
/// <c>landscape walk --model M --data D (--target|--one-hot) [--steps N] [--step-size S] [--seed S] [--out F] [--json F]</c>:
/// a random walk on M (tangent step, Gauss–Newton retraction), recording loss, rank and distance.
/// </summary>
public static class WalkCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create(CliContext context)
    {
        var command = new Command("walk", "Random walk on M: tangent steps in ker J, retracted onto M by Gauss–Newton; the loss stays 0 while the point travels.");
        var model = CommonOptions.Model();
        command.Options.Add(model);
        var data = new CommonOptions.DataOptions(command);
        var steps = new Option<int>("--steps") { Description = "number of steps", DefaultValueFactory = _ => 20 };
        var stepSize = new Option<double>("--step-size") { Description = "length of each tangent step", DefaultValueFactory = _ => 0.05 };
        var seed = new Option<int>("--seed") { Description = "seed of the random directions", DefaultValueFactory = _ => 0 };
        var output = new Option<string?>("--out") { Description = "write the model at the end point" };
        var tolerance = new Option<double>("--tolerance") { Description = "retraction tolerance: max|H| ≤ this·max(1, max|y|)", DefaultValueFactory = _ => 1e-10 };
        var json = CommonOptions.Json();
        foreach (var o in new Option[] { steps, stepSize, seed, output, tolerance, json })
        {
            command.Options.Add(o);
        }
        command.SetAction(result =>
        {
            LandscapeApp.Initialize();
            var point = CommonOptions.LoadModel(result.GetValue(model)!);
            var set = data.Load(result);
            int n = result.GetValue(steps);
            double size = result.GetValue(stepSize);
            if (n < 1 || !(size > 0) || !double.IsFinite(size))
            {
                throw new UsageException("--steps must be ≥ 1 and --step-size a positive number");
            }
            using var m = point.ToModel();
            using var map = new ResidualMap(m, set);
            var options = new WalkOptions(n, size, result.GetValue(seed), result.GetValue(tolerance) * Math.Max(1, set.MaxAbsTarget()));
            var walk = context.WithProgress("walk", _ => ManifoldWalk.Run(map, options));
            string F(double v) => v.ToString("G4", CultureInfo.InvariantCulture);
            var table = new Table().AddColumns("step", "loss", "max|H|", "rank J", "path length", "‖p − p₀‖", "retraction", "GN steps");
            foreach (var s in walk.Steps)
            {
                table.AddRow(s.Step.ToString(CultureInfo.InvariantCulture), F(s.Loss), F(s.MaxAbsResidual), s.Rank.ToString(CultureInfo.InvariantCulture), F(s.PathLength), F(s.Displacement), F(s.NormalCorrection), s.RetractionSteps.ToString(CultureInfo.InvariantCulture));
            }
            context.Console.Write(table);
            context.Console.MarkupLine(Markup.Escape($"ℓd = {map.Constraints}, n = {map.ParameterCount}, dim M = n − ℓd = {map.ParameterCount - map.Constraints}; status {walk.Status.ToJsonName()}"));
            if (result.GetValue(output) is { } path)
            {
                InitCommand.SaveModel(path, new NetworkPoint(point.Network, m.ToArray()));
            }
            JsonOutput.Write(result.GetValue(json), w =>
            {
                w.WriteNumber("n", map.ParameterCount);
                w.WriteNumber("constraints", map.Constraints);
                w.WriteString("status", walk.Status.ToJsonName());
                w.WriteStartArray("steps");
                foreach (var s in walk.Steps)
                {
                    w.WriteStartObject();
                    w.WriteNumber("step", s.Step);
                    w.WriteNumber("loss", s.Loss);
                    w.WriteNumber("maxAbsResidual", s.MaxAbsResidual);
                    w.WriteNumber("rank", s.Rank);
                    w.WriteNumber("pathLength", s.PathLength);
                    w.WriteNumber("displacement", s.Displacement);
                    w.WriteNumber("retraction", s.NormalCorrection);
                    w.WriteNumber("gaussNewtonSteps", s.RetractionSteps);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
            });
            return walk.Status == SolverStatus.Converged ? LandscapeApp.Success : LandscapeApp.Failure;
        });
        return command;
    }
}
