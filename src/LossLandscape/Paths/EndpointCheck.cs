using LossLandscape.Data;
using LossLandscape.Models;

namespace LossLandscape.Paths;

/// <summary>Checks that two endpoints of a path are points of the same network, so that a path between them means something.</summary>
public static class EndpointCheck
{
    /// <summary>
    /// Throws a <see cref="LandscapeInputException"/> whose one line names the first difference between the networks of
    /// <paramref name="a"/> and <paramref name="b"/>: MLP against DAG, input dimension, hidden widths, activations, outputs,
    /// the DAG's vertices, edges or labels, a sequential network's input shape, layers or batch-norm statistics, or the input scaling (compared number for number: a different scaling is a
    /// different function of the raw inputs).
    /// </summary>
    /// <param name="a">The first endpoint.</param>
    /// <param name="b">The second endpoint.</param>
    /// <param name="nameA">How the message names <paramref name="a"/>.</param>
    /// <param name="nameB">How the message names <paramref name="b"/>.</param>
    /// <param name="compareStatistics">Whether the batch norms' running statistics are compared (<see cref="Difference"/>).</param>
    public static void RequireSameArchitecture(NetworkPoint a, NetworkPoint b, string nameA = "A", string nameB = "B", bool compareStatistics = true)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        if (Difference(a.Network, b.Network, compareStatistics) is { } what)
        {
            throw new LandscapeInputException($"the endpoints are different networks: {what.Item} differ, {nameA} has {what.A}, {nameB} has {what.B}");
        }
        if (a.Parameters.Length != b.Parameters.Length)
        {
            throw new LandscapeInputException($"the endpoints have {a.Parameters.Length} and {b.Parameters.Length} parameters");
        }
    }

    /// <summary>The first difference between two networks (what differs, and its two values), or null when they are the same architecture.</summary>
    /// <param name="a">The first network.</param>
    /// <param name="b">The second network.</param>
    /// <param name="compareStatistics">
    /// Whether the batch norms' running statistics are compared (the default); false for two networks that may differ by a
    /// permutation of their channels, which moves the statistics with γ and β (<see cref="WeightMatching"/>).
    /// </param>
    public static (string Item, string A, string B)? Difference(FeedforwardNetwork a, FeedforwardNetwork b, bool compareStatistics = true)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        static string Kind(FeedforwardNetwork n) => n switch
        {
            Mlp => $"an MLP ({ModelFile.MlpFormat})",
            DagNetwork => $"a DAG ({ModelFile.DagFormat})",
            SequentialNetwork => $"a sequential network ({ModelFile.SeqFormat})",
            TorchScriptNetwork => "a TorchScript module",
            _ => $"a {n.GetType().Name}",
        };
        if (a.GetType() != b.GetType())
        {
            return ("the network kinds", Kind(a), Kind(b));
        }
        if (a.InputDim != b.InputDim)
        {
            return ("the input dimensions", $"p = {a.InputDim}", $"p = {b.InputDim}");
        }
        if (a.OutputDim != b.OutputDim)
        {
            return ("the outputs", $"ℓ = {a.OutputDim}", $"ℓ = {b.OutputDim}");
        }
        if (a is Mlp ma && b is Mlp mb)
        {
            string Widths(Mlp m) => m.Hidden.Count == 0 ? "no hidden layer" : "hidden widths " + string.Join(",", m.Hidden.Select(h => h.Width));
            string Activations(Mlp m) => "activations " + string.Join(",", m.Hidden.Select(h => h.Activation.Name));
            if (!ma.Hidden.Select(h => h.Width).SequenceEqual(mb.Hidden.Select(h => h.Width)))
            {
                return ("the hidden widths", Widths(ma), Widths(mb));
            }
            if (!ma.Hidden.Select(h => h.Activation.Name).SequenceEqual(mb.Hidden.Select(h => h.Activation.Name)))
            {
                return ("the activations", Activations(ma), Activations(mb));
            }
        }
        else if (a is DagNetwork da && b is DagNetwork db)
        {
            if (da.ParameterCount != db.ParameterCount)
            {
                return ("the parameter counts", $"m = {da.ParameterCount}", $"m = {db.ParameterCount}");
            }
            if (!da.Vertices.Select(v => (v.Kind, v.Bias, v.Activation?.Name)).SequenceEqual(db.Vertices.Select(v => (v.Kind, v.Bias, v.Activation?.Name))))
            {
                return ("the vertices (kinds, bias labels or activations)", $"{da.Vertices.Count} vertices", $"{db.Vertices.Count} vertices");
            }
            if (!da.Edges.SequenceEqual(db.Edges))
            {
                return ("the edges or their labels", $"{da.Edges.Count} edges", $"{db.Edges.Count} edges");
            }
        }
        else if (a is TorchScriptNetwork ta && b is TorchScriptNetwork tb)
        {
            string Parameters(TorchScriptNetwork t) => $"{t.Parameters.Count} parameter tensors ({t.ParameterCount} values)";
            if (!ta.Parameters.Select(p => (p.Name, string.Join("×", p.Shape))).SequenceEqual(tb.Parameters.Select(p => (p.Name, string.Join("×", p.Shape)))))
            {
                return ("the parameters (names or shapes)", Parameters(ta), Parameters(tb));
            }
            if (ta.CodeDigest != tb.CodeDigest)
            {
                return ("the modules' code", $"the code of {ta.Path}", $"other code (a module scripted and one traced differ too)");
            }
            var buffersA = ta.BufferValues();
            var buffersB = tb.BufferValues();
            int k = Enumerable.Range(0, Math.Min(buffersA.Count, buffersB.Count)).FirstOrDefault(i => buffersA[i].Name != buffersB[i].Name || !buffersA[i].Values.SequenceEqual(buffersB[i].Values), -1);
            if (buffersA.Count != buffersB.Count || k >= 0)
            {
                // A path moves p only: f at every point is the module with A's buffers, so B's own function would not be its end.
                string name = k >= 0 ? buffersA[k].Name : "buffers";
                return ("the buffers (batch-norm running statistics: fixed values, not parameters, which a path does not move)", $"its own {name}", $"a different {name}");
            }
        }
        else if (a is SequentialNetwork sa && b is SequentialNetwork sb)
        {
            if (!sa.InputShape.SequenceEqual(sb.InputShape))
            {
                return ("the input shapes", $"[{string.Join(", ", sa.InputShape)}]", $"[{string.Join(", ", sb.InputShape)}]");
            }
            if (sa.Spec != sb.Spec)
            {
                return ("the layers", sa.Spec, sb.Spec);
            }
            // The batch norms' running statistics are part of the function: compared number for number.
            for (int k = 0; k < sa.Layers.Count; k++)
            {
                if (sa.Layers[k].Layer is BatchNormLayer x && sb.Layers[k].Layer is BatchNormLayer y
                    && !(x.Eps == y.Eps && (!compareStatistics || (x.RunningMean!.SequenceEqual(y.RunningMean!) && x.RunningVar!.SequenceEqual(y.RunningVar!)))))
                {
                    return ("the batch-norm statistics", $"the running mean, variance and eps of layer {k + 1}", "other values");
                }
            }
        }
        if (!SameScaling(a.Scaling, b.Scaling))
        {
            static string Describe(InputScaling? s) => s is null ? "none" : "stored (x − shift)/scale";
            return ("the input scalings", Describe(a.Scaling), a.Scaling is not null && b.Scaling is not null ? "another shift or scale" : Describe(b.Scaling));
        }
        return null;
    }

    private static bool SameScaling(InputScaling? a, InputScaling? b) =>
        (a is null && b is null)
        || (a is not null && b is not null && a.Shift.SequenceEqual(b.Shift) && a.Scale.SequenceEqual(b.Scale));
}
