from mlops_cli.main import main

raise SystemExit(main())
