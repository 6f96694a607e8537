using System.Globalization;
using System.Text;
using CsCheck;

namespace LossLandscape.Tests;

/// <summary>
/// Issue 13, section 6: a property-based test (CsCheck) of the command line's contract on generated input. CSV and model
/// files, valid ones and mutations of them (characters replaced, lines dropped or repeated, truncation, extreme and
/// non-finite numbers, huge cells, wrong counts), are run through <c>init</c>, <c>info</c>, <c>evaluate</c>, <c>certify</c> and <c>trace</c>
/// in-process. For every case: exit 0 with finite numbers in the output and the JSON, or exit 2 with exactly one line and
/// no stack trace; never another code, never an exception escaping.
/// </summary>
public sealed class CliPropertyTests : IDisposable
{
    /// <summary>
    /// Cases per run: each is five in-process commands on a table of at most 8 rows (a few ms each), so 300 cases stay
    /// well under the 30 s the issue allows (about 9 s measured on a shared 2-core machine) while covering every mutation kind many times. Chosen, not derived.
    /// </summary>
    private const int Iterations = 300;

    /// <summary>The seed of the run, fixed so that a failure reproduces (CsCheck prints the seed of a failing case to rerun it).</summary>
    private const string Seed = "0N0XIzNsQ0O2";

    /// <summary>Runs that must end in each of exit 0 and exit 2, so that the property is tested on both sides (a tenth of the 1500 runs; seen: about 31% exit 0, 69% exit 2).</summary>
    private const int MinimumPerOutcome = 150;

    private readonly string _dir = Directory.CreateTempSubdirectory("landscape-property-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>Numbers a cell or a parameter may hold: ordinary ones, float64's extremes and text that is not a finite number.</summary>
    private static readonly Gen<string> Number = Gen.Frequency(
        (8, Gen.Double[-10, 10].Select(v => v.ToString("R", CultureInfo.InvariantCulture))),
        (1, Gen.OneOf("1e308", "-1e308", "1e-308", "1e999", "NaN", "Infinity", "-0", "0x1F", "", " ", "1,5", "\"3\"", "abc", "1e30")));

    /// <summary>A valid CSV: a header x1…xp,y and d rows of finite numbers.</summary>
    private static readonly Gen<string> ValidCsv =
        Gen.Select(Gen.Int[1, 3], Gen.Int[1, 8], (p, d) => (p, d))
            .SelectMany(t => Gen.Double[-5, 5].Array[t.d * (t.p + 1)].Select(values =>
            {
                var text = new StringBuilder(string.Join(",", Enumerable.Range(1, t.p).Select(k => $"x{k}").Append("y"))).Append('\n');
                for (int i = 0; i < t.d; i++)
                {
                    text.Append(string.Join(",", values.Skip(i * (t.p + 1)).Take(t.p + 1).Select(v => v.ToString("R", CultureInfo.InvariantCulture)))).Append('\n');
                }
                return text.ToString();
            }));

    /// <summary>A valid model for p inputs and one output: an MLP p → h → 1 with a named activation.</summary>
    private static Gen<string> ValidModel(int p) =>
        Gen.Select(Gen.Int[1, 4], Gen.OneOf("smoolu", "tanh", "relu", "softplus"), (h, a) => (h, a))
            .SelectMany(t => Gen.Double[-2, 2].Array[(t.h * p) + t.h + t.h + 1].Select(values =>
                $"{{\"format\":\"losslandscape.mlp/1\",\"inputDim\":{p},\"hidden\":[{{\"width\":{t.h},\"activation\":\"{t.a}\"}}],\"outputDim\":1,\"parameters\":[{string.Join(",", values.Select(v => v.ToString("R", CultureInfo.InvariantCulture)))}]}}"));

    /// <summary>One mutation of a text: replace a character, drop or repeat a line, truncate, put a number or a huge cell somewhere.</summary>
    private static Gen<string> Mutate(string text) =>
        Gen.Select(Gen.Int[0, 6], Gen.Int[0, Math.Max(0, text.Length - 1)], Number, Gen.OneOf(",", "\n", "\"", "{", "]", ":", "a", "-", "\r\n", "\0"),
            (kind, at, number, ch) => kind switch
            {
                0 => text[..at] + ch + text[Math.Min(text.Length, at + 1)..],
                1 => text[..at],
                2 => DropOrRepeatLine(text, at, repeat: false),
                3 => DropOrRepeatLine(text, at, repeat: true),
                4 => text[..at] + number + text[at..],
                5 => text[..at] + new string('9', 5000) + text[at..],
                _ => ReplaceFirstNumberAfter(text, at, number),
            });

    private static string DropOrRepeatLine(string text, int at, bool repeat)
    {
        var lines = text.Split('\n').ToList();
        int k = at % lines.Count;
        if (repeat)
        {
            lines.Insert(k, lines[k]);
        }
        else
        {
            lines.RemoveAt(k);
        }
        return string.Join("\n", lines);
    }

    private static string ReplaceFirstNumberAfter(string text, int at, string number)
    {
        int start = text.IndexOfAny("0123456789".ToCharArray(), at);
        if (start < 0)
        {
            return text;
        }
        int end = start;
        while (end < text.Length && (char.IsDigit(text[end]) || text[end] is '.' or 'e' or 'E' or '-'))
        {
            end++;
        }
        return text[..start] + number + text[end..];
    }

    /// <summary>A case: a CSV and a model for its width, each valid or mutated up to twice.</summary>
    private static readonly Gen<(string Csv, string Model)> Case =
        ValidCsv.SelectMany(csv =>
        {
            int p = csv[..csv.IndexOf('\n')].Count(c => c == ',');
            return Gen.Select(MaybeMutated(csv), ValidModel(p).SelectMany(MaybeMutated), (c, m) => (c, m));
        });

    private static Gen<string> MaybeMutated(string text) => Gen.Frequency(
        (1, Gen.Const(text)),
        (2, Mutate(text)),
        (1, Mutate(text).SelectMany(Mutate)));

    [Fact]
    public void Generated_Csv_And_Model_Files_Give_Exit_0_With_Finite_Output_Or_Exit_2_With_One_Line()
    {
        var codes = new Dictionary<int, int>();
        Case.Sample(c =>
        {
            string csv = Path.Combine(_dir, "data.csv"), model = Path.Combine(_dir, "model.json");
            string json = Path.Combine(_dir, "out.json"), initialized = Path.Combine(_dir, "init.json");
            File.WriteAllText(csv, c.Csv);
            File.WriteAllText(model, c.Model);
            var commands = new (string[] Args, string? Written)[]
            {
                (["init", "--data", csv, "--hidden", "2", "--out", initialized], initialized),
                (["info", "--model", model], null),
                (["evaluate", "--model", model, "--data", csv, "--json", json], json),
                (["certify", "--model", model, "--data", csv, "--json", json], json),
                (["trace", "--model", model, "--data", csv, "--method", "exact", "--json", json], json),
            };
            foreach (var (args, written) in commands)
            {
                if (written is not null)
                {
                    File.Delete(written); // what is checked is what this command wrote
                }
                var run = CliTests.Run(args);
                Check(run, written);
                codes[run.Code] = codes.GetValueOrDefault(run.Code) + 1;
            }
        }, seed: Seed, iter: Iterations, threads: 1, print: c => $"CSV:\n{c.Csv}\nmodel:\n{c.Model}");
        // Both sides of the contract were exercised: the generator makes valid files and refused ones.
        Assert.True(codes.GetValueOrDefault(0) >= MinimumPerOutcome && codes.GetValueOrDefault(2) >= MinimumPerOutcome,
            $"exit codes seen: {string.Join(", ", codes.Select(kv => $"{kv.Key}×{kv.Value}"))}");
    }

    /// <summary>The contract of one run: exit 0 with finite output and JSON, or exit 2 with one line.</summary>
    private static void Check((int Code, string Out, string Err) r, string? written)
    {
        if (r.Code == 0)
        {
            foreach (var text in new[] { r.Out, written is not null && File.Exists(written) ? File.ReadAllText(written) : "" })
            {
                Assert.DoesNotContain("NaN", text);
                Assert.DoesNotContain("Infinity", text);
                Assert.DoesNotContain("∞", text);
            }
            return;
        }
        CliGuardTests.AssertOneLineError(r);
        Assert.True(r.Err.Length <= MaxErrorLength, $"a {r.Err.Length}-character error line");
    }

    /// <summary>The longest error line accepted: a path, a position, a quoted value of at most 80 characters and the words.</summary>
    private const int MaxErrorLength = 600;
}
