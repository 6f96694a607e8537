using System.Collections.Immutable;
using System.Reflection;
using System.Reflection.Emit;
using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;
using System.Reflection.PortableExecutable;

namespace LossLandscape.Tests;

/// <summary>
/// The library's folders read bottom-up (README, "Architecture"): a folder's code uses only the folders below it. Read from
/// the compiled library, not its text: every type a type of folder A names — in a signature, a field, a base type, a local,
/// or an IL instruction of a method body (calls, field accesses, allocations, casts, tokens) — belongs to A or to a folder
/// below it. Comments and documentation references are not code and are not counted.
/// </summary>
public sealed class LayeringTests
{
    /// <summary>
    /// The folders from the bottom up; a folder may use the ones before it. Two folders on one line of the README's picture
    /// (Data and Models; Training, Paths and Construction) are ordered here too, as their code is.
    /// </summary>
    internal static readonly string[] Layers =
    [
        "Engine", "Data", "Models", "Problem", "Operators", "Approximations", "Curvature", "Geometry", "Training", "Paths", "Construction", "Reports",
    ];

    [Fact]
    public void Every_Library_Folder_Uses_Only_The_Folders_Below_It()
    {
        var uses = FolderDependencies(typeof(Landscape).Assembly.Location);
        var folders = uses.Keys.Concat(uses.Values.SelectMany(v => v.Keys)).Distinct().ToArray();
        // Every folder of the library is placed (the root holds the front door, Landscape, above them all).
        Assert.DoesNotContain(folders, f => f != "" && !Layers.Contains(f));
        var upward = new List<string>();
        foreach (var (from, targets) in uses)
        {
            int level = from == "" ? Layers.Length : Array.IndexOf(Layers, from);
            foreach (var (to, by) in targets)
            {
                int target = to == "" ? Layers.Length : Array.IndexOf(Layers, to);
                if (target > level)
                {
                    upward.Add($"{from} → {to}: {string.Join(", ", by.Order(StringComparer.Ordinal).Take(6))}");
                }
            }
        }
        Assert.True(upward.Count == 0, "folders that use a folder above them:\n" + string.Join("\n", upward));
    }

    [Fact]
    public void The_Check_Sees_A_Reference_Made_Only_In_A_Method_Body()
    {
        // This test assembly's LayeringProbe.Below uses LayeringProbe.Above.Value only inside a method body.
        var uses = FolderDependencies(typeof(LayeringTests).Assembly.Location, "LossLandscape.Tests.LayeringProbe");
        Assert.True(uses.TryGetValue("Below", out var targets) && targets.ContainsKey("Above"),
            "the IL reference from Below to Above was not seen");
        Assert.False(uses.TryGetValue("Above", out var back) && back.ContainsKey("Below"));
    }

    /// <summary>
    /// For the types under <paramref name="root"/> (default <c>LossLandscape</c>): folder → (folder used → the types that use
    /// it), the folder being the first namespace segment below the root ("" for the root itself).
    /// </summary>
    internal static Dictionary<string, Dictionary<string, HashSet<string>>> FolderDependencies(string assembly, string root = "LossLandscape")
    {
        using var stream = File.OpenRead(assembly);
        using var pe = new PEReader(stream);
        var md = pe.GetMetadataReader();
        var provider = new Namespaces(md);
        var result = new Dictionary<string, Dictionary<string, HashSet<string>>>(StringComparer.Ordinal);
        foreach (var handle in md.TypeDefinitions)
        {
            var type = md.GetTypeDefinition(handle);
            string? from = Folder(provider.NamespaceOf(handle), root);
            if (from is null)
            {
                continue;
            }
            string name = md.GetString(type.Name);
            var used = new HashSet<string>(StringComparer.Ordinal);
            if (!type.BaseType.IsNil)
            {
                used.UnionWith(provider.OfHandle(type.BaseType));
            }
            foreach (var i in type.GetInterfaceImplementations())
            {
                used.UnionWith(provider.OfHandle(md.GetInterfaceImplementation(i).Interface));
            }
            foreach (var f in type.GetFields())
            {
                used.UnionWith(md.GetFieldDefinition(f).DecodeSignature(provider, null));
            }
            foreach (var m in type.GetMethods())
            {
                var method = md.GetMethodDefinition(m);
                var signature = method.DecodeSignature(provider, null);
                used.UnionWith(signature.ReturnType);
                foreach (var p in signature.ParameterTypes)
                {
                    used.UnionWith(p);
                }
                if (method.RelativeVirtualAddress == 0)
                {
                    continue;
                }
                var body = pe.GetMethodBody(method.RelativeVirtualAddress);
                if (!body.LocalSignature.IsNil)
                {
                    foreach (var local in md.GetStandaloneSignature(body.LocalSignature).DecodeLocalSignature(provider, null))
                    {
                        used.UnionWith(local);
                    }
                }
                foreach (int token in Tokens(body.GetILBytes()!))
                {
                    used.UnionWith(provider.OfHandle(MetadataTokens.EntityHandle(token)));
                }
            }
            foreach (var ns in used)
            {
                string? to = Folder(ns, root);
                if (to is null || to == from)
                {
                    continue;
                }
                if (!result.TryGetValue(from, out var targets))
                {
                    result[from] = targets = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
                }
                if (!targets.TryGetValue(to, out var by))
                {
                    targets[to] = by = new HashSet<string>(StringComparer.Ordinal);
                }
                by.Add(name);
            }
        }
        return result;
    }

    /// <summary>
    /// The folder of namespace <paramref name="ns"/> under <paramref name="root"/>, null outside it. Of the root's own types,
    /// the front door <see cref="Landscape"/> is "" (above every folder) and the others (<see cref="LandscapeInputException"/>,
    /// the one input error every layer throws) belong to the bottom layer.
    /// </summary>
    private static string? Folder(string ns, string root)
    {
        if (ns.StartsWith(root + "#", StringComparison.Ordinal))
        {
            return ns[(root.Length + 1)..] == nameof(Landscape) ? "" : Layers[0];
        }
        return ns.StartsWith(root + ".", StringComparison.Ordinal) ? ns[(root.Length + 1)..].Split('.')[0] : null;
    }

    /// <summary>Operand sizes of every IL opcode, from the runtime's own table (<see cref="OpCodes"/>).</summary>
    private static readonly Dictionary<ushort, OperandType> Operands = typeof(OpCodes).GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => (OpCode)f.GetValue(null)!).ToDictionary(o => (ushort)o.Value, o => o.OperandType);

    /// <summary>The metadata tokens in the operands of an IL body (fields, methods, types, member references, signatures).</summary>
    private static IEnumerable<int> Tokens(byte[] il)
    {
        for (int i = 0; i < il.Length;)
        {
            ushort code = il[i] == 0xFE ? (ushort)(0xFE00 | il[i + 1]) : il[i];
            i += il[i] == 0xFE ? 2 : 1;
            var operand = Operands[code];
            switch (operand)
            {
                case OperandType.InlineField or OperandType.InlineMethod or OperandType.InlineType or OperandType.InlineTok:
                    yield return BitConverter.ToInt32(il, i);
                    i += 4;
                    break;
                case OperandType.InlineNone:
                    break;
                case OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar:
                    i += 1;
                    break;
                case OperandType.InlineVar:
                    i += 2;
                    break;
                case OperandType.InlineI8 or OperandType.InlineR:
                    i += 8;
                    break;
                case OperandType.InlineSwitch:
                    i += 4 + (4 * BitConverter.ToInt32(il, i));
                    break;
                default: // InlineBrTarget, InlineI, ShortInlineR, InlineSig, InlineString
                    i += 4;
                    break;
            }
        }
    }

    /// <summary>The namespaces of the assembly's own types a signature or a token names (outer types' for nested ones).</summary>
    private sealed class Namespaces(MetadataReader md) : ISignatureTypeProvider<ImmutableHashSet<string>, object?>
    {
        private static readonly ImmutableHashSet<string> None = ImmutableHashSet.Create<string>(StringComparer.Ordinal);

        /// <summary>The namespace of the (outermost) type; a type of a root namespace (no dot) is named, as "Root#Type".</summary>
        public string NamespaceOf(TypeDefinitionHandle handle)
        {
            var type = md.GetTypeDefinition(handle);
            while (type.IsNested)
            {
                type = md.GetTypeDefinition(type.GetDeclaringType());
            }
            string ns = md.GetString(type.Namespace);
            return ns.Contains('.', StringComparison.Ordinal) ? ns : $"{ns}#{md.GetString(type.Name)}";
        }

        /// <summary>The namespaces a token names: a type, a member's declaring type and signature, a generic instantiation.</summary>
        public ImmutableHashSet<string> OfHandle(EntityHandle handle)
        {
            switch (handle.Kind)
            {
                case HandleKind.TypeDefinition:
                    return None.Add(NamespaceOf((TypeDefinitionHandle)handle));
                case HandleKind.TypeSpecification:
                    return md.GetTypeSpecification((TypeSpecificationHandle)handle).DecodeSignature(this, null);
                case HandleKind.MethodDefinition:
                    return None.Add(NamespaceOf(md.GetMethodDefinition((MethodDefinitionHandle)handle).GetDeclaringType()));
                case HandleKind.FieldDefinition:
                    return None.Add(NamespaceOf(md.GetFieldDefinition((FieldDefinitionHandle)handle).GetDeclaringType()));
                case HandleKind.MemberReference:
                    var reference = md.GetMemberReference((MemberReferenceHandle)handle);
                    return reference.Parent.Kind is HandleKind.TypeSpecification or HandleKind.TypeDefinition or HandleKind.MethodDefinition
                        ? OfHandle(reference.Parent)
                        : None;
                case HandleKind.MethodSpecification:
                    var spec = md.GetMethodSpecification((MethodSpecificationHandle)handle);
                    return OfHandle(spec.Method).Union(spec.DecodeSignature(this, null).SelectMany(t => t));
                default:
                    return None;
            }
        }

        public ImmutableHashSet<string> GetTypeFromDefinition(MetadataReader reader, TypeDefinitionHandle handle, byte rawTypeKind) => None.Add(NamespaceOf(handle));

        public ImmutableHashSet<string> GetTypeFromReference(MetadataReader reader, TypeReferenceHandle handle, byte rawTypeKind) => None;

        public ImmutableHashSet<string> GetTypeFromSpecification(MetadataReader reader, object? genericContext, TypeSpecificationHandle handle, byte rawTypeKind) =>
            reader.GetTypeSpecification(handle).DecodeSignature(this, genericContext);

        public ImmutableHashSet<string> GetPrimitiveType(PrimitiveTypeCode typeCode) => None;

        public ImmutableHashSet<string> GetSZArrayType(ImmutableHashSet<string> elementType) => elementType;

        public ImmutableHashSet<string> GetArrayType(ImmutableHashSet<string> elementType, ArrayShape shape) => elementType;

        public ImmutableHashSet<string> GetByReferenceType(ImmutableHashSet<string> elementType) => elementType;

        public ImmutableHashSet<string> GetPointerType(ImmutableHashSet<string> elementType) => elementType;

        public ImmutableHashSet<string> GetPinnedType(ImmutableHashSet<string> elementType) => elementType;

        public ImmutableHashSet<string> GetGenericInstantiation(ImmutableHashSet<string> genericType, ImmutableArray<ImmutableHashSet<string>> typeArguments) =>
            typeArguments.Aggregate(genericType, (all, t) => all.Union(t));

        public ImmutableHashSet<string> GetGenericMethodParameter(object? genericContext, int index) => None;

        public ImmutableHashSet<string> GetGenericTypeParameter(object? genericContext, int index) => None;

        public ImmutableHashSet<string> GetFunctionPointerType(MethodSignature<ImmutableHashSet<string>> signature) =>
            signature.ParameterTypes.Aggregate(signature.ReturnType, (all, t) => all.Union(t));

        public ImmutableHashSet<string> GetModifiedType(ImmutableHashSet<string> modifier, ImmutableHashSet<string> unmodifiedType, bool isRequired) => unmodifiedType;
    }
}
