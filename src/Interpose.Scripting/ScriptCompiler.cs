using System.Collections.Immutable;
using System.Reflection;
using System.Runtime.Loader;
using System.Text;
using Interpose.Proxy;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Emit;
using Microsoft.CodeAnalysis.Text;

namespace Interpose.Scripting;

/// <summary>
/// Compiles one script's text into an assembly, loads it into its own collectible load context and creates its
/// addons. The references are the running process's own assemblies (the framework and Interpose), so a script sees
/// exactly the types the proxy runs with.
/// </summary>
internal static class ScriptCompiler
{
    // The SDK's implicit usings for a console app, plus the namespaces a script's addon needs.
    private const string GlobalUsings = """
        global using System;
        global using System.Collections.Generic;
        global using System.IO;
        global using System.Linq;
        global using System.Net;
        global using System.Net.Http;
        global using System.Text;
        global using System.Threading;
        global using System.Threading.Tasks;
        global using Interpose.Proxy;
        global using Interpose.Core.Http;
        """;

    private static readonly CSharpParseOptions ParseOptions = new(LanguageVersion.Latest, DocumentationMode.None);

    private static readonly SyntaxTree GlobalUsingsTree = CSharpSyntaxTree.ParseText(SourceText.From(GlobalUsings, Encoding.UTF8), ParseOptions, "(global usings)");

    private static readonly CSharpCompilationOptions CompilationOptions = new(
        OutputKind.DynamicallyLinkedLibrary,
        optimizationLevel: OptimizationLevel.Release,
        nullableContextOptions: NullableContextOptions.Enable,
        concurrentBuild: false);

    // Made once per process: reading ~200 assemblies' metadata is most of the first compilation's cost.
    private static readonly Lazy<ImmutableArray<MetadataReference>> References = new(LoadReferences);

    private static int s_loads;

    /// <summary>Compiles and loads <paramref name="text"/>, the content of <paramref name="path"/>.</summary>
    /// <exception cref="ScriptCompilationException">The script does not compile, defines no addon, or an addon's constructor threw.</exception>
    public static LoadedScript Load(string path, string text)
    {
        var errors = new List<string>();
        CheckDirectives(path, text, errors);
        if (errors.Count > 0)
        {
            throw new ScriptCompilationException(path, errors);
        }

        var tree = CSharpSyntaxTree.ParseText(SourceText.From(text, Encoding.UTF8), ParseOptions, path);
        var name = $"interpose-script-{System.IO.Path.GetFileNameWithoutExtension(path)}-{Interlocked.Increment(ref s_loads)}";
        var compilation = CSharpCompilation.Create(name, [GlobalUsingsTree, tree], References.Value, CompilationOptions);
        using var pe = new MemoryStream();
        using var pdb = new MemoryStream();
        var emitted = compilation.Emit(pe, pdb, options: new EmitOptions(debugInformationFormat: DebugInformationFormat.PortablePdb));
        foreach (var diagnostic in emitted.Diagnostics)
        {
            if (diagnostic.Severity == DiagnosticSeverity.Error)
            {
                // Roslyn's own form: FILE(LINE,COLUMN): error CS1002: ; expected
                errors.Add(diagnostic.ToString());
            }
        }

        if (!emitted.Success)
        {
            throw new ScriptCompilationException(path, errors.Count > 0 ? errors : [$"{path}: the script could not be compiled"]);
        }

        pe.Position = 0;
        pdb.Position = 0;
        var context = new AssemblyLoadContext(name, isCollectible: true);
        try
        {
            var assembly = context.LoadFromStream(pe, pdb);
            var addons = CreateAddons(path, assembly);
            return new LoadedScript(context, addons);
        }
        catch
        {
            context.Unload();
            throw;
        }
    }

    /// <summary>
    /// .NET 10's file-based apps take <c>#:package</c>, <c>#:sdk</c>, <c>#:property</c> and <c>#:project</c>; a script
    /// compiled in the proxy has no restore step, so it can reference only the framework and Interpose.
    /// </summary>
    private static void CheckDirectives(string path, string text, List<string> errors)
    {
        var line = 0;
        foreach (var raw in text.AsSpan().EnumerateLines())
        {
            line++;
            var trimmed = raw.TrimStart();
            if (trimmed.StartsWith("#:", StringComparison.Ordinal))
            {
                var column = raw.Length - trimmed.Length + 1;
                errors.Add($"{path}({line},{column}): error: '{trimmed.ToString().Trim()}': scripts cannot reference packages, projects or SDKs; they see only the framework and Interpose");
            }
        }
    }

    private static ProxyAddon[] CreateAddons(string path, Assembly assembly)
    {
        var addons = new List<ProxyAddon>();
        foreach (var type in assembly.GetTypes())
        {
            if (type.IsAbstract || type.IsGenericTypeDefinition || !typeof(ProxyAddon).IsAssignableFrom(type))
            {
                continue;
            }

            if (type.GetConstructor(Type.EmptyTypes) is null)
            {
                throw new ScriptCompilationException(path, [$"{path}: addon {type.FullName} needs a public constructor without parameters"]);
            }

            try
            {
                addons.Add((ProxyAddon)Activator.CreateInstance(type)!);
            }
            catch (TargetInvocationException ex)
            {
                var inner = ex.InnerException ?? ex;
                throw new ScriptCompilationException(path, [$"{path}: the constructor of addon {type.FullName} threw {inner.GetType().Name}: {inner.Message}"]);
            }
        }

        if (addons.Count == 0)
        {
            throw new ScriptCompilationException(path, [$"{path}: defines no addon (a non-abstract class deriving from Interpose.Proxy.ProxyAddon)"]);
        }

        return [.. addons];
    }

    private static ImmutableArray<MetadataReference> LoadReferences()
    {
        // The framework-dependent host lists every assembly the process may load (the framework and the application's
        // own, Interpose among them) in TRUSTED_PLATFORM_ASSEMBLIES; compiling against them is what Roslyn's own
        // scripting does.
        var list = (AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES") as string ?? string.Empty)
            .Split(System.IO.Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries);
        var references = ImmutableArray.CreateBuilder<MetadataReference>(list.Length);
        foreach (var file in list)
        {
            if (file.EndsWith(".dll", StringComparison.OrdinalIgnoreCase))
            {
                references.Add(MetadataReference.CreateFromFile(file));
            }
        }

        return references.ToImmutable();
    }
}

/// <summary>One compiled version of a script: its load context and the addons it made.</summary>
internal sealed record LoadedScript(AssemblyLoadContext Context, ProxyAddon[] Addons);
