namespace Interpose.Store;

/// <summary>Why a flow store could not be opened.</summary>
public enum FlowStoreProblem
{
    /// <summary>The file is not an Interpose flow store: not SQLite, or a SQLite database of something else.</summary>
    NotAFlowStore,

    /// <summary>The file was written by a newer Interpose, with a schema this version does not know.</summary>
    NewerSchema,

    /// <summary>The file is an Interpose flow store, but damaged.</summary>
    Corrupt,

    /// <summary>Another process (or another store in this one) is recording into the file.</summary>
    Locked,

    /// <summary>The file does not exist (reading).</summary>
    NotFound,
}
