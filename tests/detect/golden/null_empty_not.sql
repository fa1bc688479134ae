(coalesce("c:EventID" = '1', FALSE) AND (NOT ("c:ParentImage" IS NULL)) AND (NOT coalesce("l:Description" = '', FALSE)))
