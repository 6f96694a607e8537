using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using LossLandscape.Engine;
using LossLandscape.Models;

namespace LossLandscape.Paths;

/// <summary>The spelling of a <see cref="ConnectMethod"/> on the command line and in JSON.</summary>
public static class ConnectMethodText
{
    /// <summary>"linear", "bezier", "polychain", "neb", "manifold".</summary>
    public static string ToJsonName(this ConnectMethod method) => method.ToString().ToLowerInvariant();

    /// <summary>The method named <paramref name="name"/> (case-insensitive); false if none is.</summary>
    public static bool TryParse(string name, out ConnectMethod method)
    {
        foreach (var m in Enum.GetValues<ConnectMethod>())
        {
            if (string.Equals(m.ToJsonName(), name?.Trim(), StringComparison.OrdinalIgnoreCase))
            {
                method = m;
                return true;
            }
        }
        method = default;
        return false;
    }
}

/// <summary>What a table, a JSON report and a path file say about one method's path.</summary>
/// <param name="Method">The method's name (<see cref="ConnectMethodText.ToJsonName"/>).</param>
/// <param name="Aligned">Whether B was aligned to A by weight matching first.</param>
/// <param name="MaxLoss">max L along the path (<see cref="PathMeasures.MaxLoss"/>).</param>
/// <param name="Barrier">max L − ½(L(A) + L(B)).</param>
/// <param name="MaxAbsResidual">max |H| along the path.</param>
/// <param name="LengthRatio">Path length / ‖A − B‖.</param>
/// <param name="Vertices">The number of vertices.</param>
/// <param name="Evaluations">What building the path cost.</param>
/// <param name="Seconds">Wall time.</param>
/// <param name="Status">How the method ended (<see cref="SolverStatusText.ToJsonName"/>).</param>
/// <param name="Certified">True only for a manifold path whose certificate holds.</param>
/// <param name="Detail">One line on how it ended.</param>
public sealed record ConnectionSummary(string Method, bool Aligned, double MaxLoss, double Barrier, double MaxAbsResidual, double LengthRatio, int Vertices,
    EvaluationCounts Evaluations, double Seconds, string Status, bool Certified, string? Detail)
{
    /// <summary>The summary of <paramref name="result"/>.</summary>
    public static ConnectionSummary From(ConnectionResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        var m = result.Measures;
        return new ConnectionSummary(result.Method.ToJsonName(), result.Aligned, m.MaxLoss, m.Barrier, m.MaxAbsResidual, m.LengthRatio,
            result.Vertices, result.Evaluations, result.Seconds, result.Status.ToJsonName(), result.Certified, result.Detail);
    }
}

/// <summary>The measured points of one method's path, as a path file keeps them.</summary>
/// <param name="Method">The method's name.</param>
/// <param name="Points">The points in order of t.</param>
public sealed record PathProfile(string Method, IReadOnlyList<PathPoint> Points);

/// <summary>A path file read back (<see cref="PathFile.Load"/>).</summary>
/// <param name="Network">The network the parameters belong to.</param>
/// <param name="Method">The method whose vertices the file holds.</param>
/// <param name="Interpolation">How that path runs between its vertices.</param>
/// <param name="Vertices">The vertices from A.</param>
/// <param name="Methods">Every method's summary (empty in a file that has none).</param>
/// <param name="Profiles">Every method's measured points (empty in a file that has none).</param>
public sealed record PathDocument(FeedforwardNetwork Network, string Method, PathInterpolation Interpolation, IReadOnlyList<PathVertex> Vertices,
    IReadOnlyList<ConnectionSummary> Methods, IReadOnlyList<PathProfile> Profiles);

/// <summary>
/// The path file <c>losslandscape.path/1</c>: <c>{"format", "model": {the model file without "parameters"}, "method",
/// "interpolation", "vertices": [{"t", "parameters": [n numbers, the model file's layout]}, …], "methods": [summaries],
/// "profiles": [{"method", "points": [{"t", "loss", "maxAbsResidual", "isVertex"}]}]}</c>, vertices in order from A.
/// </summary>
/// <remarks>
/// "interpolation" says how the path runs between vertices: "straight" (the chord), "curve" (the vertices sample a
/// Bézier curve densely) or "projected" (a manifold path: the chord projected onto M; the chord itself leaves M by
/// the segment certificate's straightChordMaxAbsResidual). Non-finite numbers are written as null.
/// </remarks>
public static class PathFile
{
    /// <summary>The format tag.</summary>
    public const string Format = "losslandscape.path/1";

    /// <summary>
    /// Writes <paramref name="chosen"/>'s vertices, with every result's summary and profile, atomically (a temporary
    /// file beside the target, renamed over it).
    /// </summary>
    public static void Save(string path, FeedforwardNetwork network, ConnectionResult chosen, IReadOnlyList<ConnectionResult> results)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(chosen);
        ArgumentNullException.ThrowIfNull(results);
        AtomicFile.Write(path, stream =>
        {
            using var w = new Utf8JsonWriter(stream);
            w.WriteStartObject();
            w.WriteString("format", Format);
            w.WritePropertyName("model");
            ModelWithoutParameters(network).WriteTo(w);
            w.WriteString("method", chosen.Method.ToJsonName());
            w.WriteString("interpolation", JsonNamingPolicy.CamelCase.ConvertName(chosen.Path.Interpolation.ToString()));
            w.WriteStartArray("vertices");
            foreach (var v in chosen.Path.Vertices)
            {
                w.WriteStartObject();
                Number(w, "t", v.T);
                w.WriteStartArray("parameters");
                foreach (double x in v.Parameters)
                {
                    Number(w, null, x);
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("methods");
            foreach (var r in results)
            {
                WriteSummary(w, ConnectionSummary.From(r));
            }
            w.WriteEndArray();
            w.WriteStartArray("profiles");
            foreach (var r in results)
            {
                w.WriteStartObject();
                w.WriteString("method", r.Method.ToJsonName());
                w.WriteBoolean("aligned", r.Aligned);
                w.WriteStartArray("points");
                foreach (var p in r.Profile)
                {
                    w.WriteStartObject();
                    Number(w, "t", p.T);
                    Number(w, "loss", p.Loss);
                    Number(w, "maxAbsResidual", p.MaxAbsResidual);
                    w.WriteBoolean("isVertex", p.IsVertex);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        });
    }

    /// <summary>Reads a path file; every fault is a <see cref="LandscapeInputException"/> naming the file.</summary>
    public static PathDocument Load(string path)
    {
        if (!File.Exists(path))
        {
            throw new LandscapeInputException($"path file not found: {path}");
        }
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(File.ReadAllText(path), documentOptions: JsonInput.Strict);
        }
        catch (JsonException e)
        {
            throw new LandscapeInputException($"{path}: not JSON: {JsonInput.Reason(e)}");
        }
        try
        {
            if (root is not JsonObject obj || (string?)obj["format"] != Format)
            {
                throw new LandscapeInputException($"{path}: not a path file (\"format\" must be \"{Format}\", as PathFile.Save writes)");
            }
            if (obj["model"] is not JsonObject model)
            {
                throw new LandscapeInputException($"{path}: no \"model\" object");
            }
            if (obj["vertices"] is not JsonArray vertexArray || vertexArray.Count < 2)
            {
                throw new LandscapeInputException($"{path}: \"vertices\" must be an array of at least two vertices");
            }
            var vertices = new List<PathVertex>();
            for (int k = 0; k < vertexArray.Count; k++)
            {
                if (vertexArray[k] is not JsonObject v || v["parameters"] is not JsonArray p)
                {
                    throw new LandscapeInputException($"{path}: vertex {k} has no \"parameters\" array");
                }
                double t = Finite(v["t"], $"{path}: vertex {k}: t");
                var parameters = p.Select((x, i) => Finite(x, $"{path}: vertex {k}: parameter {i}")).ToArray();
                vertices.Add(new PathVertex(t, parameters));
            }
            var withParameters = (JsonObject)model.DeepClone();
            withParameters["parameters"] = new JsonArray(vertices[0].Parameters.Select(x => (JsonNode?)JsonValue.Create(x)).ToArray());
            NetworkPoint first;
            try
            {
                first = ModelFile.Parse(withParameters.ToJsonString(), $"{path} (model)");
            }
            catch (ModelFormatException e)
            {
                throw new LandscapeInputException(e.Message);
            }
            for (int k = 1; k < vertices.Count; k++)
            {
                if (vertices[k].Parameters.Length != first.Network.ParameterCount)
                {
                    throw new LandscapeInputException($"{path}: vertex {k} has {vertices[k].Parameters.Length} parameters, the model has n = {first.Network.ParameterCount}");
                }
                if (!(vertices[k].T > vertices[k - 1].T))
                {
                    throw new LandscapeInputException($"{path}: vertex {k}: t must increase along the path");
                }
            }
            if (vertices[0].T != 0 || vertices[^1].T != 1)
            {
                throw new LandscapeInputException($"{path}: the vertices' t must run from 0 to 1");
            }
            string interpolationName = (string?)obj["interpolation"] ?? "straight";
            if (!Enum.TryParse<PathInterpolation>(interpolationName, ignoreCase: true, out var interpolation))
            {
                throw new LandscapeInputException($"{path}: unknown interpolation \"{interpolationName}\" (straight, curve, projected)");
            }
            var methods = (obj["methods"] as JsonArray ?? []).Select((m, i) => ReadSummary(m, $"{path}: methods[{i}]")).ToList();
            var profiles = (obj["profiles"] as JsonArray ?? []).Select((m, i) => ReadProfile(m, $"{path}: profiles[{i}]")).ToList();
            return new PathDocument(first.Network, (string?)obj["method"] ?? "", interpolation, vertices, methods, profiles);
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        {
            throw new LandscapeInputException($"{path}: malformed path file: {e.Message.ReplaceLineEndings(" ")}");
        }
    }

    /// <summary>The model file's JSON object without its "parameters".</summary>
    private static JsonObject ModelWithoutParameters(FeedforwardNetwork network)
    {
        var json = ModelFile.Serialize(new NetworkPoint(network, new double[network.ParameterCount]));
        var obj = JsonNode.Parse(json)!.AsObject();
        obj.Remove("parameters");
        return obj;
    }

    private static void WriteSummary(Utf8JsonWriter w, ConnectionSummary s)
    {
        w.WriteStartObject();
        w.WriteString("method", s.Method);
        w.WriteBoolean("aligned", s.Aligned);
        Number(w, "maxLoss", s.MaxLoss);
        Number(w, "barrier", s.Barrier);
        Number(w, "maxAbsResidual", s.MaxAbsResidual);
        Number(w, "lengthRatio", s.LengthRatio);
        w.WriteNumber("vertices", s.Vertices);
        w.WriteStartObject("evaluations");
        w.WriteNumber("forward", s.Evaluations.Forward);
        w.WriteNumber("gradient", s.Evaluations.Gradient);
        w.WriteNumber("jacobian", s.Evaluations.Jacobian);
        w.WriteEndObject();
        Number(w, "seconds", s.Seconds);
        w.WriteString("status", s.Status);
        w.WriteBoolean("certified", s.Certified);
        if (s.Detail is not null)
        {
            w.WriteString("detail", s.Detail);
        }
        w.WriteEndObject();
    }

    private static ConnectionSummary ReadSummary(JsonNode? node, string where)
    {
        if (node is not JsonObject o)
        {
            throw new LandscapeInputException($"{where}: not an object");
        }
        var e = o["evaluations"] as JsonObject;
        return new ConnectionSummary((string?)o["method"] ?? throw new LandscapeInputException($"{where}: no \"method\""), (bool?)o["aligned"] ?? false,
            Nullable(o["maxLoss"]), Nullable(o["barrier"]), Nullable(o["maxAbsResidual"]), Nullable(o["lengthRatio"]), (int?)o["vertices"] ?? 0,
            new EvaluationCounts((long?)e?["forward"] ?? 0, (long?)e?["gradient"] ?? 0, (long?)e?["jacobian"] ?? 0), Nullable(o["seconds"]),
            (string?)o["status"] ?? "", (bool?)o["certified"] ?? false, (string?)o["detail"]);
    }

    private static PathProfile ReadProfile(JsonNode? node, string where)
    {
        if (node is not JsonObject o || o["points"] is not JsonArray points)
        {
            throw new LandscapeInputException($"{where}: not a profile (an object with \"method\" and \"points\")");
        }
        string method = (string?)o["method"] ?? throw new LandscapeInputException($"{where}: no \"method\"");
        if ((bool?)o["aligned"] == true)
        {
            method += " (aligned)";
        }
        return new PathProfile(method, points.Select((p, i) => p is JsonObject q
            ? new PathPoint(Finite(q["t"], $"{where}: point {i}: t"), Nullable(q["loss"]), Nullable(q["maxAbsResidual"]), (bool?)q["isVertex"] ?? false)
            : throw new LandscapeInputException($"{where}: point {i} is not an object")).ToList());
    }

    private static double Finite(JsonNode? node, string what)
    {
        double? x = node is JsonValue v && v.TryGetValue(out double d) ? d : null;
        return x is { } value && double.IsFinite(value) ? value : throw new LandscapeInputException($"{what} is not a finite number");
    }

    /// <summary>A number, or NaN where the file has null (a non-finite value when written).</summary>
    private static double Nullable(JsonNode? node) => node is JsonValue v && v.TryGetValue(out double d) ? d : double.NaN;

    private static void Number(Utf8JsonWriter w, string? name, double x)
    {
        if (name is not null)
        {
            w.WritePropertyName(name);
        }
        if (double.IsFinite(x))
        {
            w.WriteNumberValue(x);
        }
        else
        {
            w.WriteNullValue();
        }
    }

    /// <summary>Formats a number for a message.</summary>
    internal static string G(double x) => x.ToString("G4", CultureInfo.InvariantCulture);
}
