using System.CommandLine;
using LossLandscape.Geometry;
using LossLandscape.Paths;
using LossLandscape.Reports;
using Spectre.Console;

namespace LossLandscape.Cli.Commands;

/// <summary>
/// <c>landscape slice --model M --data D (--target|--one-hot) --directions random|filter|tangent|normal|eigen[,KIND] [--dims 1|2] [--grid 51] [--range 1.0] --out FILE.png|.svg [--json F]</c>.
/// </summary>
public static class SliceCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create(CliContext context)
    {
        var command = new Command("slice", "1D and 2D slices of L around the model's point: random, filter-normalized (Li et al. 2018), tangent or normal to M, Hessian eigenvectors.");
        var model = CommonOptions.Model();
        command.Options.Add(model);
        var data = new CommonOptions.DataOptions(command);
        var directions = new Option<string>("--directions") { Description = "random | filter | tangent | normal | eigen, or two of them comma-separated (e.g. tangent,normal)", DefaultValueFactory = _ => "random" };
        var dims = new Option<int>("--dims") { Description = "1 or 2 (with one kind, 2 uses two orthogonal directions of that kind)", DefaultValueFactory = _ => 2 };
        var grid = new Option<int>("--grid") { Description = "points per axis", DefaultValueFactory = _ => 51 };
        var range = new Option<double>("--range") { Description = "coordinates run over [−range, range]", DefaultValueFactory = _ => 1.0 };
        var ignoreBias = new Option<bool>("--ignore-bias") { Description = "filter directions: zero on biases instead of normalizing them with their unit" };
        var seed = new Option<int>("--seed") { Description = "seed of the random directions", DefaultValueFactory = _ => 0 };
        var output = new Option<string>("--out") { Description = "the figure, .png or .svg", Required = true };
        var json = CommonOptions.Json();
        foreach (var o in new Option[] { directions, dims, grid, range, ignoreBias, seed, output, json })
        {
            command.Options.Add(o);
        }
        command.SetAction(result =>
        {
            LandscapeApp.Initialize();
            var outPath = result.GetValue(output)!;
            var ext = Path.GetExtension(outPath).ToLowerInvariant();
            if (ext is not (".png" or ".svg"))
            {
                throw new UsageException($"--out: '{outPath}' must end in .png or .svg");
            }
            var kinds = ParseKinds(result.GetValue(directions)!, result.GetValue(dims));
            var point = CommonOptions.LoadModel(result.GetValue(model)!);
            var set = data.Load(result);
            using var m = point.ToModel();
            using var map = new ResidualMap(m, set);
            var options = new SliceOptions(kinds, result.GetValue(grid), result.GetValue(range), result.GetValue(seed), result.GetValue(ignoreBias));
            var slice = context.WithProgress("slice", _ => LossSlice.Compute(map, options));
            Plots.Save(Plots.Slice(slice, $"{string.Join(" × ", kinds).ToLowerInvariant()} slice of L"), outPath);
            double max = slice.Loss.Cast<double>().Max();
            context.Console.MarkupLine(Markup.Escape($"wrote {outPath}: {(slice.Betas.Length == 0 ? "1D" : "2D")} slice, {slice.Alphas.Length} points per axis, L at the point {slice.CenterLoss:G4}, max L on the grid {max:G4}"));
            JsonOutput.Write(result.GetValue(json), w =>
            {
                w.WriteStartArray("directions");
                foreach (var k in kinds)
                {
                    w.WriteStringValue(k.ToString().ToLowerInvariant());
                }
                w.WriteEndArray();
                w.WriteStartArray("directionNorms");
                foreach (var v in slice.DirectionNorms)
                {
                    w.WriteNumberValue(v);
                }
                w.WriteEndArray();
                Array(w, "alphas", slice.Alphas);
                Array(w, "betas", slice.Betas);
                w.WriteStartArray("loss");
                for (int i = 0; i < slice.Alphas.Length; i++)
                {
                    w.WriteStartArray();
                    for (int j = 0; j < slice.Loss.GetLength(1); j++)
                    {
                        w.WriteNumberValue(slice.Loss[i, j]);
                    }
                    w.WriteEndArray();
                }
                w.WriteEndArray();
                w.WriteNumber("centerLoss", slice.CenterLoss);
            });
            return LandscapeApp.Success;
        });
        return command;
    }

    /// <summary>Parses <c>--directions</c> and <c>--dims</c>.</summary>
    public static SliceDirection[] ParseKinds(string text, int dims)
    {
        if (dims is not (1 or 2))
        {
            throw new UsageException($"--dims: {dims} is not 1 or 2");
        }
        var kinds = text.Split(',', StringSplitOptions.TrimEntries).Select(k => k switch
        {
            "random" => SliceDirection.Random,
            "filter" => SliceDirection.Filter,
            "tangent" => SliceDirection.Tangent,
            "normal" => SliceDirection.Normal,
            "eigen" => SliceDirection.Eigen,
            _ => throw new UsageException($"--directions: '{k}' is not one of random, filter, tangent, normal, eigen"),
        }).ToArray();
        return kinds.Length switch
        {
            1 => dims == 1 ? kinds : [kinds[0], kinds[0]],
            2 => kinds,
            _ => throw new UsageException("--directions takes one or two kinds"),
        };
    }

    private static void Array(System.Text.Json.Utf8JsonWriter w, string name, double[] values)
    {
        w.WriteStartArray(name);
        foreach (var v in values)
        {
            w.WriteNumberValue(v);
        }
        w.WriteEndArray();
    }
}
