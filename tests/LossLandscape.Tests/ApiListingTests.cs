using LossLandscape.Geometry;
using System.Xml.Linq;

namespace LossLandscape.Tests;

/// <summary>docs/api.md is the listing generated from the built library, never a hand-written one that has drifted.</summary>
public sealed class ApiListingTests
{
    /// <summary>Set to 1 to rewrite docs/api.md from the current build instead of comparing with it.</summary>
    private const string UpdateVariable = "UPDATE_API_LISTING";

    [Fact]
    public void Docs_Api_Md_Is_The_Listing_Generated_From_The_Library_Assembly()
    {
        var assembly = typeof(Landscape).Assembly;
        var xml = Path.ChangeExtension(assembly.Location, ".xml");
        Assert.True(File.Exists(xml), $"{xml} is missing: the library builds its XML documentation (GenerateDocumentationFile)");
        string generated = ApiListing.Generate(assembly, XDocument.Load(xml));
        string path = SourceTree.Path("docs", "api.md");
        if (Environment.GetEnvironmentVariable(UpdateVariable) == "1")
        {
            File.WriteAllText(path, generated);
            return;
        }
        Assert.True(File.Exists(path), $"{path} is missing; write it with {UpdateVariable}=1 dotnet test LossLandscape.sln -c Release --filter ApiListing");
        var committed = File.ReadAllText(path).ReplaceLineEndings("\n").Split('\n');
        var expected = generated.Split('\n');
        int line = Enumerable.Range(0, Math.Min(committed.Length, expected.Length)).FirstOrDefault(i => committed[i] != expected[i], -1);
        if (line < 0 && committed.Length == expected.Length)
        {
            return;
        }
        line = line < 0 ? Math.Min(committed.Length, expected.Length) : line;
        Assert.Fail($"docs/api.md differs from the public API at line {line + 1}:\n  docs/api.md: {committed.ElementAtOrDefault(line) ?? "(end of file)"}\n  generated:   {expected.ElementAtOrDefault(line) ?? "(end of file)"}\n"
            + $"regenerate it with {UpdateVariable}=1 dotnet test LossLandscape.sln -c Release --filter ApiListing");
    }

    [Fact]
    public void Listing_Shows_Signatures_Defaults_Nullability_And_First_Sentences()
    {
        var assembly = typeof(Landscape).Assembly;
        string listing = ApiListing.Generate(assembly, XDocument.Load(Path.ChangeExtension(assembly.Location, ".xml")));
        Assert.Contains("### `public sealed class Landscape : IDisposable`", listing);
        Assert.Contains("- `public static Landscape For(IDifferentiableModel model, IDataSource data, double exponent = 2, int? batchSize = null)` — Binds any differentiable model to `data`.", listing);
        Assert.Contains("- `public SpectrumResult Spectrum(SpectrumOptions? options = null, RunLimits? limits = null)` — ", listing);
        Assert.Contains("- `public TrainingResult Train(Landscape.TrainOptions? options = null, RunLimits? limits = null)`", listing);
        Assert.Contains("### `public sealed record SpectrumOptions`", listing);
        Assert.Contains("- `public SpectrumEnd Which { get; init; }` — Which end of the spectrum, and the order of the answer; default the largest.", listing);
        Assert.Contains("### `public enum TraceMethod`", listing);
        // The summary stops at the first sentence, and a record's compiler-written members are not listed.
        Assert.Contains("- `public static Landscape Load(string modelPath, IDataSource data)` — Reads a model file (`ModelFile.Load`: `losslandscape.mlp/1`, `dag/1`, `seq/1` or a TorchScript module, opened for the data's row shape) and binds it to `data`.\n", listing);
        Assert.Contains("through `ModuleModel`: p is the concatenation of its parameters.\n", listing);
        Assert.DoesNotContain("Deconstruct", listing);
        Assert.DoesNotContain("<Clone>$", listing);
    }
}
