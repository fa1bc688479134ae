(((coalesce("c:EventID" = '1', FALSE) AND ("c:User" IS NOT NULL)) OR (coalesce("c:EventID" = '2', FALSE) AND ("c:User" IS NULL))) AND (NOT coalesce(contains("l:CommandLine", 'legit'), FALSE)))
