using System.Globalization;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.RegularExpressions;
using System.Xml.Linq;

namespace LossLandscape.Tests;

/// <summary>
/// Writes the public API of an assembly as Markdown: its namespaces, public types and their public and protected
/// members, each with a C# signature and the first sentence of its XML documentation summary.
/// </summary>
/// <remarks>
/// Members the compiler writes for records (Equals, GetHashCode, ToString, Deconstruct, ==, !=, the clone method) are
/// left out: they carry no documentation and every record has them. Documentation is looked up by the ID the C# compiler
/// gives each member (ECMA-334 Annex D: <c>T:</c>, <c>M:</c>, <c>P:</c>, <c>F:</c>, <c>E:</c>).
/// </remarks>
internal static partial class ApiListing
{
    private const BindingFlags Declared = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;

    private static readonly Dictionary<Type, string> Keywords = new()
    {
        [typeof(void)] = "void", [typeof(object)] = "object", [typeof(string)] = "string", [typeof(bool)] = "bool",
        [typeof(byte)] = "byte", [typeof(sbyte)] = "sbyte", [typeof(char)] = "char", [typeof(short)] = "short",
        [typeof(ushort)] = "ushort", [typeof(int)] = "int", [typeof(uint)] = "uint", [typeof(long)] = "long",
        [typeof(ulong)] = "ulong", [typeof(float)] = "float", [typeof(double)] = "double", [typeof(decimal)] = "decimal",
    };

    private static readonly Dictionary<string, string> Operators = new()
    {
        ["op_Addition"] = "+", ["op_Subtraction"] = "-", ["op_Multiply"] = "*", ["op_Division"] = "/", ["op_Modulus"] = "%",
        ["op_UnaryNegation"] = "-", ["op_UnaryPlus"] = "+", ["op_Equality"] = "==", ["op_Inequality"] = "!=",
        ["op_LessThan"] = "<", ["op_GreaterThan"] = ">", ["op_LessThanOrEqual"] = "<=", ["op_GreaterThanOrEqual"] = ">=",
        ["op_LogicalNot"] = "!", ["op_BitwiseAnd"] = "&", ["op_BitwiseOr"] = "|", ["op_ExclusiveOr"] = "^",
    };

    /// <summary>The Markdown listing of <paramref name="assembly"/>'s public API, with summaries from <paramref name="documentation"/>.</summary>
    public static string Generate(Assembly assembly, XDocument documentation)
    {
        var docs = documentation.Descendants("member")
            .Where(m => m.Attribute("name") is not null)
            .GroupBy(m => m.Attribute("name")!.Value)
            .ToDictionary(g => g.Key, g => g.First().Element("summary"));
        var types = assembly.GetExportedTypes().OrderBy(t => t.Namespace, StringComparer.Ordinal).ThenBy(DisplayName, StringComparer.Ordinal).ToArray();
        var entries = types.Select(t => (Type: t, Members: Members(t).ToArray())).ToArray();
        var name = assembly.GetName().Name;

        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"# Public API of {name}\n\n");
        text.Append(CultureInfo.InvariantCulture, $"Generated from `{name}.dll` and its XML documentation by `ApiListingTests` (tests/LossLandscape.Tests/ApiListing.cs); do not edit. ");
        text.Append("After changing the public API, regenerate it with\n`UPDATE_API_LISTING=1 dotnet test LossLandscape.sln -c Release --filter ApiListing`. ");
        text.Append("Each entry is a signature and the first sentence of its documentation; start at `LossLandscape.Landscape`.\n\n");
        var namespaces = entries.GroupBy(e => e.Type.Namespace ?? "(global)").ToArray();
        text.Append(CultureInfo.InvariantCulture, $"{namespaces.Length} namespaces, {entries.Length} public types, {entries.Sum(e => e.Members.Length)} public members.\n\n");
        foreach (var ns in namespaces)
        {
            text.Append(CultureInfo.InvariantCulture, $"- [{ns.Key}](#{ns.Key.Replace(".", "", StringComparison.Ordinal).ToLowerInvariant()}): {ns.Count()} types\n");
        }
        foreach (var ns in namespaces)
        {
            text.Append(CultureInfo.InvariantCulture, $"\n## {ns.Key}\n");
            foreach (var (type, members) in ns)
            {
                text.Append(CultureInfo.InvariantCulture, $"\n### `{TypeDeclaration(type)}`\n\n");
                text.Append(FirstSentence(docs.GetValueOrDefault("T:" + DocName(type)))).Append('\n');
                if (members.Length > 0)
                {
                    text.Append('\n');
                }
                foreach (var (signature, id, member) in members)
                {
                    string summary = FirstSentence(docs.GetValueOrDefault(id) ?? Inherited(member, docs));
                    text.Append(CultureInfo.InvariantCulture, $"- `{signature}`{(summary.Length > 0 ? " — " + summary : "")}\n");
                }
            }
        }
        return text.ToString();
    }

    private static IEnumerable<(string Signature, string DocId, MemberInfo? Member)> Members(Type type)
    {
        string typeId = DocName(type);
        if (type.IsEnum)
        {
            foreach (var field in type.GetFields(BindingFlags.Public | BindingFlags.Static).OrderBy(f => f.MetadataToken))
            {
                yield return (field.Name, $"F:{typeId}.{field.Name}", field);
            }
            yield break;
        }
        if (type.IsSubclassOf(typeof(Delegate)))
        {
            yield break;
        }
        var listed = new List<(int Order, string Name, string Signature, string DocId, MemberInfo Member)>();
        bool Shown(MethodBase m) => m.IsPublic || (!type.IsSealed && Visible(m)); // a sealed type's protected members are out of reach
        var nullability = new NullabilityInfoContext();
        foreach (var ctor in type.GetConstructors(Declared).Where(Shown).Where(c => !IsRecordCopyConstructor(type, c)))
        {
            listed.Add((0, "", $"{Access(ctor)} {SimpleName(type)}({Parameters(ctor, nullability)})", $"M:{typeId}.#ctor{ParameterIds(ctor)}", ctor));
        }
        foreach (var field in type.GetFields(Declared).Where(f => (f.IsPublic || (!type.IsSealed && (f.IsFamily || f.IsFamilyOrAssembly))) && !f.IsSpecialName))
        {
            string modifiers = field.IsLiteral ? " const" : (field.IsStatic ? " static" : "") + (field.IsInitOnly ? " readonly" : "");
            string value = field.IsLiteral ? " = " + Literal(field.GetRawConstantValue(), field.FieldType) : "";
            listed.Add((1, field.Name, $"{Access(field)}{modifiers} {TypeName(field.FieldType, nullability.Create(field), field)} {field.Name}{value}", $"F:{typeId}.{field.Name}", field));
        }
        foreach (var property in type.GetProperties(Declared))
        {
            var getter = property.GetMethod is { } g && Shown(g) ? g : null;
            var setter = property.SetMethod is { } s && Shown(s) ? s : null;
            var accessor = getter ?? setter;
            if (accessor is null || IsBoilerplate(property))
            {
                continue;
            }
            bool init = setter?.ReturnParameter.GetRequiredCustomModifiers().Contains(typeof(IsExternalInit)) == true;
            string accessors = (getter is null ? "" : "get; ") + (setter is null ? "" : init ? "init; " : "set; ");
            var index = property.GetIndexParameters();
            string name = index.Length == 0 ? property.Name : $"this[{string.Join(", ", index.Select(p => Parameter(p, nullability)))}]";
            string id = index.Length == 0 ? $"P:{typeId}.{property.Name}" : $"P:{typeId}.{property.Name}({string.Join(",", index.Select(p => DocName(p.ParameterType)))})";
            listed.Add((2, property.Name, $"{Access(accessor)}{Modifiers(accessor)} {TypeName(property.PropertyType, nullability.Create(property), property)} {name} {{ {accessors}}}", id, property));
        }
        foreach (var method in type.GetMethods(Declared).Where(Shown).Where(m => !m.IsSpecialName || Operators.ContainsKey(m.Name) || m.Name is "op_Implicit" or "op_Explicit"))
        {
            if (IsBoilerplate(method))
            {
                continue;
            }
            string generic = method.IsGenericMethodDefinition ? $"<{string.Join(", ", method.GetGenericArguments().Select(a => a.Name))}>" : "";
            string returns = TypeName(method.ReturnType, nullability.Create(method.ReturnParameter), method.ReturnParameter);
            string id = $"M:{typeId}.{method.Name}{(method.IsGenericMethodDefinition ? "``" + method.GetGenericArguments().Length : "")}{ParameterIds(method)}"
                + (method.Name is "op_Implicit" or "op_Explicit" ? "~" + DocName(method.ReturnType) : "");
            string signature = method.Name switch
            {
                "op_Implicit" or "op_Explicit" => $"{Access(method)} static {(method.Name == "op_Implicit" ? "implicit" : "explicit")} operator {returns}({Parameters(method, nullability)})",
                _ when Operators.TryGetValue(method.Name, out var op) => $"{Access(method)} static {returns} operator {op}({Parameters(method, nullability)})",
                _ => $"{Access(method)}{Modifiers(method)} {returns} {method.Name}{generic}({Parameters(method, nullability)})",
            };
            listed.Add((method.IsSpecialName ? 4 : 3, method.Name, signature, id, method));
        }
        foreach (var e in type.GetEvents(Declared).Where(e => e.AddMethod is { } add && Shown(add)))
        {
            listed.Add((5, e.Name, $"{Access(e.AddMethod!)}{Modifiers(e.AddMethod!)} event {TypeName(e.EventHandlerType!, null, null)} {e.Name}", $"E:{typeId}.{e.Name}", e));
        }
        foreach (var (_, _, signature, id, member) in listed.OrderBy(m => m.Order).ThenBy(m => m.Name, StringComparer.Ordinal).ThenBy(m => m.Signature, StringComparer.Ordinal))
        {
            yield return (signature, id, member);
        }
    }

    /// <summary>
    /// The summary an <c>&lt;inheritdoc/&gt;</c> stands for: that of the member overridden, or of the interface member
    /// implemented, where the assembly documents it.
    /// </summary>
    private static XElement? Inherited(MemberInfo? member, Dictionary<string, XElement?> docs)
    {
        var accessor = member switch
        {
            MethodInfo m => m,
            PropertyInfo p => p.GetMethod ?? p.SetMethod,
            _ => null,
        };
        if (accessor is null)
        {
            return null;
        }
        var origins = new List<MethodInfo>();
        if (accessor.GetBaseDefinition() is { } root && root != accessor)
        {
            origins.Add(root);
        }
        foreach (var face in accessor.DeclaringType!.GetInterfaces())
        {
            var map = accessor.DeclaringType.GetInterfaceMap(face);
            int k = Array.IndexOf(map.TargetMethods, accessor);
            if (k >= 0)
            {
                origins.Add(map.InterfaceMethods[k]);
            }
        }
        foreach (var origin in origins)
        {
            var declaring = origin.DeclaringType!;
            string id = member is PropertyInfo property
                ? $"P:{DocName(declaring)}.{property.Name}"
                : $"M:{DocName(declaring)}.{origin.Name}{(origin.IsGenericMethodDefinition ? "``" + origin.GetGenericArguments().Length : "")}{ParameterIds(origin)}";
            if (docs.GetValueOrDefault(id) is { } summary)
            {
                return summary;
            }
        }
        return null;
    }

    /// <summary>Public or protected: what a user of the assembly can call or override.</summary>
    private static bool Visible(MethodBase m) => m.IsPublic || m.IsFamily || m.IsFamilyOrAssembly;

    /// <summary>What the compiler writes for every record, and compiler-generated helpers (names starting with '&lt;').</summary>
    private static bool IsBoilerplate(MemberInfo member)
    {
        if (member.Name.StartsWith('<'))
        {
            return true;
        }
        if (!IsRecord(member.DeclaringType!))
        {
            return false;
        }
        // A record's positional properties have compiler-generated accessors too, but they are the record's API.
        return member is PropertyInfo p ? p.Name == "EqualityContract" : member.IsDefined(typeof(CompilerGeneratedAttribute));
    }

    private static bool IsRecord(Type type) => type.GetMethod("<Clone>$") is not null || type.GetProperty("EqualityContract", Declared) is not null;

    private static bool IsRecordCopyConstructor(Type type, ConstructorInfo c) =>
        IsRecord(type) && c.GetParameters() is [var only] && only.ParameterType == type;

    private static string Access(MethodBase m) => m.IsPublic ? "public" : m.IsFamilyOrAssembly ? "protected internal" : "protected";

    private static string Access(FieldInfo f) => f.IsPublic ? "public" : f.IsFamilyOrAssembly ? "protected internal" : "protected";

    private static string Modifiers(MethodInfo m)
    {
        if (m.IsStatic)
        {
            return " static";
        }
        if (m.IsAbstract)
        {
            return m.DeclaringType!.IsInterface ? "" : " abstract";
        }
        if (m.GetBaseDefinition() != m)
        {
            return " override";
        }
        return m.IsVirtual && !m.IsFinal ? " virtual" : "";
    }

    private static string TypeDeclaration(Type type)
    {
        string kind = type switch
        {
            { IsEnum: true } => "enum",
            { IsInterface: true } => "interface",
            { IsValueType: true } => IsRecord(type) ? "record struct" : "struct",
            _ when type.IsSubclassOf(typeof(Delegate)) => "delegate",
            { IsAbstract: true, IsSealed: true } => "static class",
            { IsAbstract: true } => "abstract class",
            _ => (type.IsSealed ? "sealed " : "") + (IsRecord(type) ? "record" : "class"),
        };
        if (kind == "delegate")
        {
            var invoke = type.GetMethod("Invoke")!;
            var context = new NullabilityInfoContext();
            return $"public delegate {TypeName(invoke.ReturnType, context.Create(invoke.ReturnParameter), invoke.ReturnParameter)} {DisplayName(type)}({Parameters(invoke, context)})";
        }
        var bases = new List<string>();
        if (type.BaseType is { } b && b != typeof(object) && b != typeof(ValueType) && b != typeof(Enum))
        {
            bases.Add(TypeName(b, null, null));
        }
        var inherited = type.BaseType?.GetInterfaces() ?? [];
        bases.AddRange(type.GetInterfaces()
            .Where(i => !inherited.Contains(i) && !(IsRecord(type) && i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IEquatable<>)))
            .Select(i => TypeName(i, null, null)).OrderBy(s => s, StringComparer.Ordinal));
        return $"public {kind} {DisplayName(type)}{(bases.Count > 0 ? " : " + string.Join(", ", bases) : "")}";
    }

    /// <summary>The type's name as C# spells it from outside: Outer.Inner, generic arguments in angle brackets.</summary>
    private static string DisplayName(Type type)
    {
        string name = SimpleName(type);
        if (type.IsGenericTypeDefinition)
        {
            var own = type.GetGenericArguments().Skip(type.DeclaringType?.GetGenericArguments().Length ?? 0).ToArray();
            if (own.Length > 0)
            {
                name += $"<{string.Join(", ", own.Select(a => a.Name))}>";
            }
        }
        return type.DeclaringType is { } outer && !type.IsGenericParameter ? DisplayName(outer) + "." + name : name;
    }

    private static string SimpleName(Type type) => type.Name.Split('`')[0];

    private static string Parameters(MethodBase method, NullabilityInfoContext context)
    {
        bool extension = method.IsDefined(typeof(ExtensionAttribute));
        return string.Join(", ", method.GetParameters().Select((p, i) => (extension && i == 0 ? "this " : "") + Parameter(p, context)));
    }

    private static string Parameter(ParameterInfo p, NullabilityInfoContext context)
    {
        var type = p.ParameterType;
        string prefix = "";
        if (type.IsByRef)
        {
            prefix = p.IsOut ? "out " : p.IsIn ? "in " : "ref ";
        }
        if (p.IsDefined(typeof(ParamArrayAttribute)))
        {
            prefix = "params ";
        }
        string text = $"{prefix}{TypeName(type, context.Create(p), p)} {p.Name}";
        if (p.HasDefaultValue)
        {
            text += " = " + Literal(p.RawDefaultValue, type);
        }
        return text;
    }

    private static string Literal(object? value, Type type)
    {
        var underlying = Nullable.GetUnderlyingType(type) ?? (type.IsByRef ? type.GetElementType()! : type);
        return value switch
        {
            null when underlying.IsValueType && Nullable.GetUnderlyingType(type) is null => "default",
            null => "null",
            string s => $"\"{s}\"",
            bool b => b ? "true" : "false",
            char c => $"'{c}'",
            double d => d.ToString("R", CultureInfo.InvariantCulture),
            float f => f.ToString("R", CultureInfo.InvariantCulture),
            _ when underlying.IsEnum => $"{DisplayName(underlying)}.{Enum.GetName(underlying, value) ?? Convert.ToString(value, CultureInfo.InvariantCulture)}",
            IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
            _ => value.ToString() ?? "",
        };
    }

    /// <summary>C# spelling of <paramref name="type"/>, with nullable annotations and tuple element names where known.</summary>
    private static string TypeName(Type type, NullabilityInfo? nullability, ICustomAttributeProvider? provider)
    {
        var names = provider?.GetCustomAttributes(typeof(TupleElementNamesAttribute), false).Cast<TupleElementNamesAttribute>().FirstOrDefault()?.TransformNames;
        int position = 0;
        return Format(type, nullability, names, ref position);
    }

    private static string Format(Type type, NullabilityInfo? nullability, IList<string?>? names, ref int position)
    {
        if (type.IsByRef)
        {
            return Format(type.GetElementType()!, nullability, names, ref position);
        }
        string suffix = nullability is { ReadState: NullabilityState.Nullable } && !type.IsValueType ? "?" : "";
        if (type.IsArray)
        {
            return Format(type.GetElementType()!, nullability?.ElementType, names, ref position) + "[" + new string(',', type.GetArrayRank() - 1) + "]" + suffix;
        }
        if (Nullable.GetUnderlyingType(type) is { } inner)
        {
            return Format(inner, nullability?.GenericTypeArguments.FirstOrDefault(), names, ref position) + "?";
        }
        if (Keywords.TryGetValue(type, out var keyword))
        {
            return keyword + suffix;
        }
        if (type.IsGenericParameter)
        {
            return type.Name + suffix;
        }
        if (!type.IsGenericType)
        {
            return DisplayName(type) + suffix;
        }
        var arguments = type.GetGenericArguments();
        if (type.FullName?.StartsWith("System.ValueTuple`", StringComparison.Ordinal) == true)
        {
            // Tuple element names are listed depth-first: this tuple's names, then those of its elements.
            int first = position;
            position += arguments.Length;
            var elements = new string[arguments.Length];
            for (int i = 0; i < arguments.Length; i++)
            {
                string element = Format(arguments[i], nullability?.GenericTypeArguments.ElementAtOrDefault(i), names, ref position);
                string? label = names is not null && first + i < names.Count ? names[first + i] : null;
                elements[i] = label is null ? element : element + " " + label;
            }
            return $"({string.Join(", ", elements)})" + suffix;
        }
        var formatted = new string[arguments.Length];
        for (int i = 0; i < arguments.Length; i++)
        {
            formatted[i] = Format(arguments[i], nullability?.GenericTypeArguments.ElementAtOrDefault(i), names, ref position);
        }
        // Split the arguments between the declaring types (Outer<A>.Inner<B>) and this one.
        var definition = type.GetGenericTypeDefinition();
        var chain = new List<Type>();
        for (var t = definition; t is not null; t = t.DeclaringType)
        {
            chain.Insert(0, t);
        }
        var parts = new List<string>();
        int used = 0;
        foreach (var t in chain)
        {
            int own = (t.IsGenericTypeDefinition ? t.GetGenericArguments().Length : 0) - used;
            parts.Add(SimpleName(t) + (own > 0 ? $"<{string.Join(", ", formatted.Skip(used).Take(own))}>" : ""));
            used += Math.Max(own, 0);
        }
        return string.Join(".", parts) + suffix;
    }

    /// <summary>The documentation ID of a type (ECMA-334 D.4.2): namespace-qualified, nested types joined by '.', arity kept.</summary>
    private static string DocName(Type type)
    {
        if (type.IsByRef)
        {
            return DocName(type.GetElementType()!) + "@";
        }
        if (type.IsArray)
        {
            int rank = type.GetArrayRank();
            return DocName(type.GetElementType()!) + (rank == 1 ? "[]" : "[" + string.Join(",", Enumerable.Repeat("0:", rank)) + "]");
        }
        if (type.IsGenericParameter)
        {
            return (type.DeclaringMethod is null ? "`" : "``") + type.GenericParameterPosition;
        }
        if (type.IsGenericType && !type.IsGenericTypeDefinition)
        {
            var arguments = type.GetGenericArguments();
            var chain = new List<Type>();
            for (var t = type.GetGenericTypeDefinition(); t is not null; t = t.DeclaringType)
            {
                chain.Insert(0, t);
            }
            var text = new StringBuilder(chain[0].Namespace is { } ns ? ns + "." : "");
            int used = 0;
            for (int k = 0; k < chain.Count; k++)
            {
                int own = (chain[k].IsGenericTypeDefinition ? chain[k].GetGenericArguments().Length : 0) - used;
                text.Append(k > 0 ? "." : "").Append(SimpleName(chain[k]));
                if (own > 0)
                {
                    text.Append('{').Append(string.Join(",", arguments.Skip(used).Take(own).Select(DocName))).Append('}');
                }
                used += Math.Max(own, 0);
            }
            return text.ToString();
        }
        return (type.FullName ?? type.Name).Replace('+', '.');
    }

    private static string ParameterIds(MethodBase method)
    {
        var parameters = method.GetParameters();
        return parameters.Length == 0 ? "" : $"({string.Join(",", parameters.Select(p => DocName(p.ParameterType)))})";
    }

    /// <summary>The first sentence of a summary, as Markdown text: cross-references by their short name, code in backticks.</summary>
    private static string FirstSentence(XElement? summary)
    {
        if (summary is null)
        {
            return "";
        }
        var text = new StringBuilder();
        foreach (var node in summary.Nodes())
        {
            Render(node, text);
        }
        string flat = Whitespace().Replace(text.ToString(), " ").Trim();
        var end = SentenceEnd().Match(flat);
        return end.Success ? flat[..(end.Index + 1)] : flat;
    }

    private static void Render(XNode node, StringBuilder text)
    {
        switch (node)
        {
            case XText t:
                text.Append(t.Value.Replace("<", "\\<", StringComparison.Ordinal));
                break;
            case XElement { Name.LocalName: "see" or "seealso" } e when e.Attribute("cref") is { } cref:
                text.Append('`').Append(ShortName(cref.Value)).Append('`');
                break;
            case XElement { Name.LocalName: "see" } e when e.Attribute("langword") is { } word:
                text.Append('`').Append(word.Value).Append('`');
                break;
            case XElement { Name.LocalName: "paramref" or "typeparamref" } e:
                text.Append('`').Append(e.Attribute("name")?.Value).Append('`');
                break;
            case XElement { Name.LocalName: "c" or "code" } e:
                text.Append('`').Append(e.Value).Append('`');
                break;
            case XElement e:
                foreach (var child in e.Nodes())
                {
                    Render(child, text);
                }
                break;
        }
    }

    /// <summary>T:A.B.C → C; M:A.B.C(System.Int32) → B.C; P:A.B.C → B.C.</summary>
    private static string ShortName(string cref)
    {
        string name = cref.Length > 2 && cref[1] == ':' ? cref[2..] : cref;
        bool member = cref.Length > 2 && cref[1] == ':' && cref[0] != 'T';
        int paren = name.IndexOf('(', StringComparison.Ordinal);
        if (paren >= 0)
        {
            name = name[..paren];
        }
        var parts = name.Replace("#ctor", "ctor", StringComparison.Ordinal).Split('.');
        return member && parts.Length >= 2 ? parts[^2] + "." + parts[^1] : parts[^1];
    }

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();

    /// <summary>A full stop, question or exclamation mark followed by a space or the end, not ending a common abbreviation.</summary>
    [GeneratedRegex(@"(?<!\b(?:e\.g|i\.e|cf|vs|al|resp|approx|Eq|Sec|Fig|No|Thm|Prop|Alg|Ch|ed))[.!?](?=\s|$)")]
    private static partial Regex SentenceEnd();
}
