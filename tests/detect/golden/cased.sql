(coalesce("c:Token" = 'AbC', FALSE) OR coalesce(contains("c:Cmd", 'EVIL'), FALSE) OR coalesce("c:Path" LIKE '/Home/%/Run_.sh' ESCAPE '\', FALSE))
